using B25.Simulator.Faults;
using Prometheus;

namespace B25.Simulator.Simulation;

/// <summary>dashboard-server: browser clients on WebSockets, REST reads.</summary>
internal sealed class DashboardServerSimulation : ServiceSimulation
{
    private readonly Gauge _clients;
    private readonly Counter _messagesSent;
    private readonly Wander _clientWalk = new(12, 1.5, 2, 30);
    private double _carry;

    public DashboardServerSimulation(Random random)
        : base("dashboard-server", random, 12,
            new HttpRoute("GET", "/api/v1/state", 5, 0.006),
            new HttpRoute("GET", "/ws", 1, 0.002),
            new HttpRoute("GET", "/health", 1, 0.001))
    {
        _clients = Gauge("dashboard_server_websocket_clients", "Connected dashboard WebSocket clients.");
        _messagesSent = Counter("dashboard_server_messages_sent_total", "State updates pushed to dashboard clients.");
    }

    protected override void AdvanceDomain(double seconds, IReadOnlySet<Fault> faults)
    {
        var clients = Math.Round(_clientWalk.Next(Random, seconds));
        _clients.Set(clients);
        _messagesSent.Inc(Random.Events(clients * 10, seconds, ref _carry));
    }
}
