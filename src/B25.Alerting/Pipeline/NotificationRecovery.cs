using B25.Alerting.Storage;
using B25.Alerting.Webhooks;
using MassTransit;

namespace B25.Alerting.Pipeline;

/// <summary>
/// Finishes journaled work after a crash or a lost bus message: at start, every alert group with
/// notifications not yet processed is published again; afterwards, those left unprocessed for a while.
/// </summary>
internal sealed partial class NotificationRecovery(
    IJournalStore journal,
    IStorageProvider provider,
    NotificationPublisher publisher,
    Microsoft.Extensions.Options.IOptions<StorageOptions> storage,
    TimeProvider time,
    ILogger<NotificationRecovery> logger,
    IBusControl? bus = null) : BackgroundService
{
    private static readonly TimeSpan PruneInterval = TimeSpan.FromHours(1);
    private DateTimeOffset _nextPrune = DateTimeOffset.MinValue;

    public static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan StaleAfter = TimeSpan.FromSeconds(30);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var first = true;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                // At start, this process's own unfinished work (a crash); afterwards one replica sweeps
                // for the cluster, the one holding the chore's lease.
                var sweeper = first || await TakeChoreAsync(stoppingToken);
                if (sweeper)
                {
                    var count = await SweepAsync(first ? TimeSpan.Zero : StaleAfter, stoppingToken);
                    if (count > 0) LogRepublished(count, first);
                    first = false;
                }
                if (sweeper && time.GetUtcNow() >= _nextPrune)
                {
                    var pruned = await PruneAsync(stoppingToken);
                    if (pruned > 0) LogPruned(pruned, storage.Value.JournalRetention);
                    _nextPrune = time.GetUtcNow() + PruneInterval;
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogSweepFailed(ex);
            }
            publisher.ForgetStale(NotificationPublisher.HeldAtMost);
            await Task.Delay(SweepInterval, time, stoppingToken);
        }
    }

    /// <summary>
    /// Whether this replica sweeps for the cluster now: it takes or renews the chore's claim, but only while its own bus can
    /// publish. A replica whose bus is down or never started (MassTransit can stay "not started" after the broker died during
    /// its start) would republish into a bus that sends nothing, and by renewing the claim keep every other replica from
    /// sweeping; it lets the claim lapse instead.
    /// </summary>
    internal async Task<bool> TakeChoreAsync(CancellationToken cancellationToken)
    {
        if (!BusCanPublish()) return false;
        return await Claims.TakeAsync(provider, "chore", "recovery", storage.Value.Replica, (long)ChoreLease.TotalMilliseconds,
            time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken);
    }

    private bool BusCanPublish() => bus is null || bus.CheckHealth().Status != BusHealthStatus.Unhealthy;

    /// <summary>How long the sweeping replica keeps the chore after its last sweep.</summary>
    internal static readonly TimeSpan ChoreLease = SweepInterval * 3;

    /// <summary>Most groups republished per sweep; the rest wait for the next sweep.</summary>
    internal const int MaxGroupsPerSweep = 5000;

    /// <summary>Republished per second at most, so recovering a backlog does not flood the bus or the processor.</summary>
    internal const int MaxPublishPerSecond = 500;

    /// <summary>
    /// Publishes, for every alert group with unprocessed notifications accepted before the cutoff, its
    /// latest one: applying it applies the group's earlier ones first, in journal order. Reads ids only
    /// (an index of unprocessed rows), never bodies.
    /// </summary>
    internal async Task<int> SweepAsync(TimeSpan olderThan, CancellationToken cancellationToken)
    {
        var cutoff = (time.GetUtcNow() - olderThan).ToUnixTimeMilliseconds();
        var rows = await journal.LatestUnappliedPerGroupAsync(cutoff, MaxGroupsPerSweep, cancellationToken);
        const int chunk = MaxPublishPerSecond / 10;
        for (var i = 0; i < rows.Count; i++)
        {
            var (id, groupId) = rows[i];
            // Through the publisher: within its bound (what does not fit stays in the journal and is published as room frees).
            publisher.Enqueue(new NotificationAccepted(id, groupId, NotificationIdentity.PartitionKey(groupId)), republished: true);
            if ((i + 1) % chunk == 0 && i + 1 < rows.Count) await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken);
        }
        return rows.Count;
    }

    /// <summary>Deletes processed notifications older than Storage:JournalRetention, in small batches.</summary>
    internal async Task<int> PruneAsync(CancellationToken cancellationToken)
    {
        var cutoff = (time.GetUtcNow() - storage.Value.JournalRetention).ToUnixTimeMilliseconds();
        var total = 0;
        while (true)
        {
            var deleted = await journal.PruneAsync(cutoff, 500, cancellationToken);
            total += deleted;
            if (deleted < 500) return total;
        }
    }

    [LoggerMessage(EventId = 1203, Level = LogLevel.Information, Message = "Pruned {Count} processed notification(s) older than {Retention} from the journal")]
    private partial void LogPruned(int count, TimeSpan retention);

    [LoggerMessage(EventId = 1201, Level = LogLevel.Warning, Message = "Published again the latest unprocessed notification of {Count} alert group(s) (at start: {AtStart})")]
    private partial void LogRepublished(int count, bool atStart);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Error, Message = "Recovery sweep failed; next try in 15 s")]
    private partial void LogSweepFailed(Exception ex);
}
