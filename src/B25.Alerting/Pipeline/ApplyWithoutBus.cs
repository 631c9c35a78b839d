using B25.Alerting.Incidents;
using B25.Alerting.Observability;
using B25.Alerting.Storage;
using MassTransit;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Pipeline;

/// <summary>
/// Keeps pages moving while the RabbitMQ bus cannot carry them. The journal is the queue; the bus only hands its notifications
/// to the replicas' processors. While this replica's bus is not healthy (the broker down or restarting, or the receive endpoint
/// still reconnecting, which MassTransit does 15-20 s after the broker is back), the replica looks at the journal every second
/// and applies what was journaled more than <see cref="BusOptions.ApplyLocallyAfter"/> ago and is still unapplied, with the
/// processor the bus's consumer calls: a group's notifications in journal order, each once (what the bus hands over later is
/// found applied; replicas doing the same meet at the group's lock). Without it, every page accepted during a broker outage
/// waited for the broker, and then for the endpoint's reconnect.
/// </summary>
/// <param name="health">The bus's health (<see cref="IBusControl.CheckHealth"/>).</param>
/// <param name="storage">The storage, which decides the default of <see cref="BusOptions.Partitions"/>.</param>
internal sealed partial class ApplyWithoutBus(Func<BusHealthResult> health, IJournalStore journal, IncidentProcessor processor,
    IOptions<BusOptions> options, TimeProvider time, ILogger<ApplyWithoutBus> logger, StorageProviderKind storage = StorageProviderKind.Sqlite)
    : BackgroundService
{
    public ApplyWithoutBus(IBusControl bus, IJournalStore journal, IncidentProcessor processor, IOptions<BusOptions> options,
        TimeProvider time, ILogger<ApplyWithoutBus> logger, IOptions<StorageOptions> storage)
        : this(bus.CheckHealth, journal, processor, options, time, logger, storage.Value.Provider)
    {
    }

    internal static readonly TimeSpan LookEvery = TimeSpan.FromSeconds(1);

    /// <summary>Groups applied per look at most; the rest at the next look.</summary>
    internal const int MaxGroupsPerLook = 1000;

    private static readonly TimeSpan FailureLogEvery = TimeSpan.FromSeconds(30);
    private DateTimeOffset _lastFailureLog = DateTimeOffset.MinValue;
    private bool _applying;
    private long _appliedSinceStart;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.Value.Transport != BusTransport.RabbitMq) return;
        using var timer = new PeriodicTimer(LookEvery, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await LookAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogLookFailed(ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// One look: sets <c>b25_alerting_bus_healthy</c>, and while the bus is not healthy applies what waited too long (unless
    /// Bus:ApplyLocallyAfter is 0). Returns the alert groups it brought up to date.
    /// </summary>
    internal async Task<int> LookAsync(CancellationToken cancellationToken)
    {
        var bus = health();
        AlertingMetrics.BusHealthy.Set(bus.Status == BusHealthStatus.Healthy ? 1 : 0);
        if (bus.Status == BusHealthStatus.Healthy || options.Value.ApplyLocallyAfter <= TimeSpan.Zero)
        {
            if (_applying) LogBusBack(_appliedSinceStart);
            _applying = false;
            return 0;
        }
        var cutoff = (time.GetUtcNow() - options.Value.ApplyLocallyAfter).ToUnixTimeMilliseconds();
        // Per group its latest unapplied notification: applying it applies the group's earlier ones first, in journal order.
        var waiting = await journal.LatestUnappliedPerGroupAsync(cutoff, MaxGroupsPerLook, cancellationToken);
        if (waiting.Count == 0) return 0;
        if (!_applying)
        {
            _applying = true;
            _appliedSinceStart = 0;
            LogApplying(bus.Status, bus.Description, waiting.Count, options.Value.ApplyLocallyAfter);
        }
        var applied = 0;
        var failed = 0;
        Exception? firstFailure = null;
        await Parallel.ForEachAsync(waiting,
            new ParallelOptions { MaxDegreeOfParallelism = options.Value.PartitionsFor(storage), CancellationToken = cancellationToken },
            async (row, ct) =>
            {
                try
                {
                    var outcome = await processor.ProcessAsync(row.Id, ct);
                    if (outcome is not (ProcessOutcome.AlreadyProcessed or ProcessOutcome.NotFound))
                    {
                        Interlocked.Increment(ref applied);
                        AlertingMetrics.AppliedWithoutBus.Inc();
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    // Left unapplied in the journal: the next look, the bus or the recovery sweep tries it again.
                    if (Interlocked.Increment(ref failed) == 1) firstFailure = ex;
                }
            });
        _appliedSinceStart += applied;
        // At most one line per FailureLogEvery: while storage is down too, every look fails.
        if (firstFailure is not null && time.GetUtcNow() - _lastFailureLog >= FailureLogEvery)
        {
            _lastFailureLog = time.GetUtcNow();
            LogSomeFailed(firstFailure, failed, waiting.Count);
        }
        return applied;
    }

    [LoggerMessage(EventId = 1005, Level = LogLevel.Warning,
        Message = "The bus is {Status} ({Description}): applying journaled notifications here without it, those waiting over {After} ({Groups} alert group(s) now)")]
    private partial void LogApplying(BusHealthStatus status, string description, int groups, TimeSpan after);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Information,
        Message = "The bus is healthy again: notifications go through it; {Applied} alert group(s) were brought up to date without it")]
    private partial void LogBusBack(long applied);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Warning,
        Message = "{Failed} of {Groups} alert group(s) could not be applied without the bus; tried again every second (this line at most every 30 s)")]
    private partial void LogSomeFailed(Exception ex, int failed, int groups);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Error, Message = "Could not read the journal to apply notifications without the bus; trying again in a second")]
    private partial void LogLookFailed(Exception ex);
}
