using System.Net.Sockets;
using MassTransit;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Pipeline;

/// <summary>
/// Ends the process when its RabbitMQ bus stays down while the broker is up. MassTransit's bus can stay "not started" for
/// good after the broker died during the bus's start (seen in the fault suite: a replica kept answering "Not ready: not
/// started" for minutes after the broker was back), or degraded after a broker restart; only a new process gets it back. The
/// watch looks every few seconds: when the bus has not been healthy for <see cref="BusOptions.ExitWhenStuckAfter"/> while the
/// broker accepted TCP connections at every look, it logs one Critical line and stops the host with exit code
/// <see cref="ServiceExit.BusStuck"/>, so the orchestrator starts the replica again. It never does so while the broker is down:
/// then a new process would be no better off, and a crash loop would stop even the journal from accepting notifications.
/// </summary>
/// <param name="health">The bus's health (<see cref="IBusControl.CheckHealth"/>).</param>
internal sealed partial class BusStartWatch(Func<BusHealthResult> health, IOptions<BusOptions> options, TimeProvider time,
    IHostApplicationLifetime lifetime, ServiceExit exit, ILogger<BusStartWatch> logger) : BackgroundService
{
    public BusStartWatch(IBusControl bus, IOptions<BusOptions> options, TimeProvider time, IHostApplicationLifetime lifetime, ServiceExit exit,
        ILogger<BusStartWatch> logger)
        : this(bus.CheckHealth, options, time, lifetime, exit, logger)
    {
    }

    internal static readonly TimeSpan CheckEvery = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(2);

    private DateTimeOffset? _stuckSince;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.Value.Transport != BusTransport.RabbitMq || options.Value.ExitWhenStuckAfter <= TimeSpan.Zero) return;
        using var timer = new PeriodicTimer(CheckEvery, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
                if (await CheckAsync(stoppingToken)) return;
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>One look; true when it stopped the host.</summary>
    internal async Task<bool> CheckAsync(CancellationToken cancellationToken)
    {
        var bus = health();
        if (bus.Status == BusHealthStatus.Healthy)
        {
            if (_stuckSince is not null) LogRecovered();
            _stuckSince = null;
            return false;
        }
        var broker = Broker();
        if (broker is null || !await AcceptsAsync(broker.Value, cancellationToken))
        {
            _stuckSince = null; // the broker is down: the bus waits for it, and so does this watch
            return false;
        }
        var now = time.GetUtcNow();
        if (_stuckSince is null)
        {
            _stuckSince = now;
            LogStuckStarts(bus.Description, broker.Value.Host, broker.Value.Port, options.Value.ExitWhenStuckAfter);
        }
        var stuck = now - _stuckSince.Value;
        if (stuck < options.Value.ExitWhenStuckAfter) return false;
        LogExiting(stuck, bus.Description, broker.Value.Host, broker.Value.Port, ServiceExit.BusStuck);
        exit.Code = ServiceExit.BusStuck;
        lifetime.StopApplication();
        return true;
    }

    private (string Host, int Port)? Broker()
    {
        if (!Uri.TryCreate(options.Value.RabbitMq.Uri, UriKind.Absolute, out var uri)) return null;
        var tls = uri.Scheme is "amqps" or "rabbitmqs";
        return (uri.Host, uri.IsDefaultPort || uri.Port <= 0 ? (tls ? 5671 : 5672) : uri.Port);
    }

    private static async Task<bool> AcceptsAsync((string Host, int Port) broker, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ConnectTimeout);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(broker.Host, broker.Port, timeout.Token);
            return true;
        }
        catch (Exception ex) when (ex is SocketException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return false;
        }
    }

    [LoggerMessage(EventId = 2101, Level = LogLevel.Warning,
        Message = "The message bus is not healthy ({Description}) although RabbitMQ at {Host}:{Port} accepts connections; the process exits if this lasts {Bound}")]
    private partial void LogStuckStarts(string description, string host, int port, TimeSpan bound);

    [LoggerMessage(EventId = 2102, Level = LogLevel.Information, Message = "The message bus is healthy again")]
    private partial void LogRecovered();

    [LoggerMessage(EventId = 2103, Level = LogLevel.Critical,
        Message = "BUS STUCK: the message bus has not been healthy for {Stuck} ({Description}) while RabbitMQ at {Host}:{Port} accepted connections; exiting with code {ExitCode} so that the process is started again")]
    private partial void LogExiting(TimeSpan stuck, string description, string host, int port, int exitCode);
}

/// <summary>The process's exit code once the host has stopped: 0 unless a part of the service ended it on purpose.</summary>
internal sealed class ServiceExit
{
    /// <summary>The bus stayed down while its broker was up (EX_TEMPFAIL: start the process again).</summary>
    public const int BusStuck = 75;

    public int Code { get; set; }
}
