using B25.Simulator.Faults;
using Prometheus;

namespace B25.Simulator.Simulation;

/// <summary>dashboard-server: browser clients on WebSockets, REST reads.</summary>
internal sealed class DashboardServerSimulation : ServiceSimulation
{
    private static readonly string[] Channels = ["positions", "orders", "market", "alerts"];

    private readonly Gauge _connections;
    private readonly Counter _messagesSent;
    private readonly Wander _clients = new(12, 1.5, 2, 30);
    private readonly Dictionary<string, double> _carry = [];

    public DashboardServerSimulation(Random random, TimeProvider time)
        : base("dashboard-server", random, time, 12,
            new HttpRoute("GET", "/api/v1/state", 5, 0.006),
            new HttpRoute("GET", "/ws", 1, 0.002),
            new HttpRoute("GET", "/health", 1, 0.001))
    {
        _connections = Gauge("dashboard_server_websocket_connections", "Browser WebSocket clients currently connected.");
        _messagesSent = Counter("dashboard_server_websocket_messages_sent_total", "Messages pushed to browser WebSocket clients.", "channel");
        _connections.Set(_clients.Value);
        foreach (var channel in Channels)
        {
            _messagesSent.WithLabels(channel).IncTo(0);
            _carry[channel] = 0;
        }
    }

    protected override void AdvanceDomain(double seconds, IReadOnlySet<Fault> faults)
    {
        var clients = Math.Round(_clients.Next(Random, seconds));
        _connections.Set(clients);
        foreach (var channel in Channels)
        {
            var carry = _carry[channel];
            _messagesSent.WithLabels(channel).Inc(Random.Events(clients * 2, seconds, ref carry));
            _carry[channel] = carry;
        }
    }
}
