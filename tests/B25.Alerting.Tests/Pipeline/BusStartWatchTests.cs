using System.Net;
using System.Net.Sockets;
using B25.Alerting.Pipeline;
using B25.Alerting.Tests.Support;
using MassTransit;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace B25.Alerting.Tests.Pipeline;

/// <summary>
/// A replica whose bus stays down while its broker is up exits to be started again, after Bus:ExitWhenStuckAfter; never while
/// the broker is down, never while the bus works. Real MassTransit bus states (a bus that never started, a started one) and
/// real TCP (a listener as the broker's port, a closed port as a broker that is down).
/// </summary>
public sealed class BusStartWatchTests(BusStates buses) : IClassFixture<BusStates>
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(1);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 3, 12, 0, 0, TimeSpan.Zero));
    private readonly Lifetime _lifetime = new();
    private readonly ServiceExit _exit = new();
    private readonly IBusControl _working = buses.Working;
    private readonly IBusControl _neverStarted = buses.NeverStarted;

    private BusStartWatch Watch(IBusControl bus, int brokerPort) => Watch(bus.CheckHealth, brokerPort);

    private BusStartWatch Watch(Func<BusHealthResult> health, int brokerPort) => new(health,
        Options.Create(new BusOptions { Transport = BusTransport.RabbitMq, RabbitMq = { Uri = $"amqp://guest:guest@127.0.0.1:{brokerPort}/" }, ExitWhenStuckAfter = Bound }),
        _time, _lifetime, _exit, NullLogger<BusStartWatch>.Instance);

    /// <summary>Looks every <see cref="BusStartWatch.CheckEvery"/> for <paramref name="span"/>; true as soon as a look stopped the host.</summary>
    private async Task<bool> LookForAsync(BusStartWatch watch, TimeSpan span)
    {
        for (var waited = TimeSpan.Zero; waited <= span; waited += BusStartWatch.CheckEvery)
        {
            if (await watch.CheckAsync(CancellationToken.None)) return true;
            _time.Advance(BusStartWatch.CheckEvery);
        }
        return false;
    }

    private static TcpListener Broker()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return listener;
    }

    [Fact]
    public async Task A_bus_that_never_started_while_the_broker_accepts_connections_stops_the_host_with_code_75_after_the_bound()
    {
        using var broker = Broker();
        var watch = Watch(_neverStarted, ((IPEndPoint)broker.LocalEndpoint).Port);

        Assert.False(await LookForAsync(watch, Bound - BusStartWatch.CheckEvery)); // within the bound: waits
        Assert.False(_lifetime.Stopped);
        Assert.True(await watch.CheckAsync(CancellationToken.None)); // at the bound
        Assert.True(_lifetime.Stopped);
        Assert.Equal(ServiceExit.BusStuck, _exit.Code);
        Assert.Equal(75, ServiceExit.BusStuck);
    }

    [Fact]
    public async Task While_the_broker_is_down_it_never_exits_and_the_bound_counts_from_when_the_broker_is_back()
    {
        int port;
        using (var probe = Broker()) port = ((IPEndPoint)probe.LocalEndpoint).Port; // a port nothing listens on: the broker is down
        var watch = Watch(_neverStarted, port);

        Assert.False(await LookForAsync(watch, TimeSpan.FromMinutes(10)));
        Assert.False(_lifetime.Stopped);

        using var broker = new TcpListener(IPAddress.Loopback, port); // the broker back, on its port
        broker.Start();
        Assert.False(await LookForAsync(watch, Bound - BusStartWatch.CheckEvery));
        Assert.True(await watch.CheckAsync(CancellationToken.None));
        Assert.Equal(ServiceExit.BusStuck, _exit.Code);
    }

    [Fact]
    public async Task A_working_bus_is_left_alone_and_a_healthy_look_starts_the_bound_again()
    {
        using var broker = Broker();
        var port = ((IPEndPoint)broker.LocalEndpoint).Port;
        Assert.Equal(BusHealthStatus.Healthy, _working.CheckHealth().Status);
        Assert.False(await LookForAsync(Watch(_working, port), TimeSpan.FromMinutes(10)));

        // Stuck for most of the bound, then one healthy look: the next stuck spell gets the whole bound again.
        var healthy = false;
        var watch = Watch(() => healthy ? _working.CheckHealth() : _neverStarted.CheckHealth(), port);
        Assert.False(await LookForAsync(watch, Bound - BusStartWatch.CheckEvery));
        healthy = true;
        Assert.False(await watch.CheckAsync(CancellationToken.None));
        healthy = false;
        Assert.False(await LookForAsync(watch, Bound - BusStartWatch.CheckEvery));
        Assert.False(_lifetime.Stopped);
        Assert.Equal(0, _exit.Code);
    }

    [Fact]
    public async Task The_service_process_exits_with_code_75_and_one_critical_line_when_its_broker_accepts_connections_but_the_bus_never_works()
    {
        // A port that accepts TCP connections and never speaks AMQP: the bus cannot start, the broker's port is open.
        using var broker = Broker();
        using var held = new CancellationTokenSource();
        var accepted = new List<TcpClient>();
        _ = Task.Run(async () =>
        {
            try { while (true) accepted.Add(await broker.AcceptTcpClientAsync(held.Token)); }
            catch (OperationCanceledException) { }
        });
        using var slack = new SlackStandIn();
        var db = Path.Combine(Path.GetTempPath(), $"b25-busstuck-{Guid.NewGuid():N}.db");
        try
        {
            var (exitCode, output) = await ServiceProcess.RunToExitAsync(ServiceProcess.Settings(db, slack, new Dictionary<string, string>
            {
                ["Bus__Transport"] = "RabbitMq",
                ["Bus__RabbitMq__Uri"] = $"amqp://guest:guest@127.0.0.1:{((IPEndPoint)broker.LocalEndpoint).Port}/",
                ["Bus__ExitWhenStuckAfter"] = "00:00:05",
            }), timeoutMs: 90_000);

            Assert.True(exitCode == ServiceExit.BusStuck, $"exit code {exitCode}:\n{output}");
            Assert.Contains("BUS STUCK: the message bus has not been healthy", output);
            Assert.True(accepted.Count > 0, "the service never connected to the broker's port");
        }
        finally
        {
            held.Cancel();
            foreach (var client in accepted.ToList()) client.Dispose();
            SqliteConnection.ClearAllPools();
            foreach (var suffix in new[] { "", "-wal", "-shm", ".lock" }) File.Delete(db + suffix);
        }
    }

    private sealed class Lifetime : IHostApplicationLifetime
    {
        public bool Stopped { get; private set; }
        public CancellationToken ApplicationStarted => CancellationToken.None;
        public CancellationToken ApplicationStopping => CancellationToken.None;
        public CancellationToken ApplicationStopped => CancellationToken.None;
        public void StopApplication() => Stopped = true;
    }
}
