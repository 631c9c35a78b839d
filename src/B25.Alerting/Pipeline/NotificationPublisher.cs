using System.Collections.Concurrent;
using System.Threading.Channels;
using B25.Alerting.Observability;
using B25.Alerting.Storage;
using B25.Alerting.Webhooks;
using MassTransit;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Pipeline;

/// <summary>
/// Publishes journaled notifications to the bus off the request path: Alertmanager's answer waits for
/// the durable journal write only, not for a broker round trip. A notification whose publish is lost
/// (crash, broker down) is still in the journal, and the recovery sweep publishes it again.
/// </summary>
/// <remarks>
/// Publishes run concurrently, up to <see cref="MaxInFlight"/> at once: each one waits for the broker's
/// confirm, and one at a time capped a replica at one confirm round trip per notification (tens per
/// second under load). The order of publishes does not matter: a group's notifications are applied in
/// journal order whatever order they arrive in.
/// <para>
/// The journal is the queue. This process holds at most <see cref="BusOptions.MaxHeldNotifications"/> notifications
/// in memory for the bus: from <see cref="Enqueue"/> until the broker confirmed it (RabbitMQ, where the backlog then
/// waits in the broker), or until the consumer is done with it (in-memory transport, whose queue is this process's
/// memory). Past the bound a notification is left in the journal alone; once the held ones fall to half the bound,
/// the oldest unapplied groups are read back from the journal and published (the latest notification of each group:
/// applying it applies the group's earlier ones first, in journal order). Nothing accepted is lost, and a storm costs
/// journal rows on disk, not memory.
/// </para>
/// <para>
/// Publishes are mandatory: a notification that no queue takes (RabbitMQ had no binding for it yet, as on a fresh broker
/// before the service's receive endpoint declared its queue) comes back as a failed publish instead of being dropped by
/// the broker. A failed publish leaves the notification in the journal; it is read back and published again, the first
/// time a second after the failure, then at growing intervals while publishes keep failing (up to
/// <see cref="MaxRefillBackoff"/>), and the recovery sweep remains behind that.
/// </para>
/// </remarks>
internal sealed partial class NotificationPublisher(
    IBus bus,
    IJournalStore journal,
    IOptions<BusOptions> options,
    ILogger<NotificationPublisher> logger) : BackgroundService
{
    internal const int MaxInFlight = 64;
    internal static readonly TimeSpan FirstRefillBackoff = TimeSpan.FromSeconds(1);
    internal static readonly TimeSpan MaxRefillBackoff = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan FailureLogEvery = TimeSpan.FromSeconds(5);

    // Publish failures: when the last one was (Environment.TickCount64, 0: none since the last success), how many in a row
    // of refills met one, and the ones not logged yet (one line per FailureLogEvery, not one per notification).
    private long _lastFailure;
    private int _failedRefills;
    private long _unloggedFailures;
    private long _lastFailureLog;
    private long _publishFailures;

    // With the trace of the request (or timer) that journaled it: the bus hop continues that trace.
    private readonly Channel<(NotificationAccepted Message, System.Diagnostics.ActivityContext Trace)> _queue =
        Channel.CreateUnbounded<(NotificationAccepted, System.Diagnostics.ActivityContext)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly SemaphoreSlim _slots = new(MaxInFlight, MaxInFlight);

    // Held notification ids, with when they were taken (Environment.TickCount64).
    private readonly ConcurrentDictionary<string, long> _held = new(StringComparer.Ordinal);
    private int _heldCount;
    private int _peakHeld;
    private long _leftCount;
    // Set when a notification was left in the journal; cleared by a refill that found nothing more to publish.
    private volatile bool _leftInJournal;
    private readonly SemaphoreSlim _room = new(0, 1);
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _warmUps = new(StringComparer.Ordinal);

    private readonly bool _heldUntilApplied = options.Value.Transport == BusTransport.InMemory;

    private int Bound => options.Value.MaxHeldNotifications;

    /// <summary>Notifications held in memory for the bus now.</summary>
    public int Held => Volatile.Read(ref _heldCount);

    /// <summary>The most ever held at once (what the bound promises: never above <see cref="BusOptions.MaxHeldNotifications"/>).</summary>
    public int PeakHeld => Volatile.Read(ref _peakHeld);

    /// <summary>Publishes that failed (since the process started), returned ones included.</summary>
    public long PublishFailures => Interlocked.Read(ref _publishFailures);

    /// <summary>Notifications this process left in the journal because the bound was reached (since it started).</summary>
    public long LeftInJournalCount => Interlocked.Read(ref _leftCount);

    /// <summary>Queues a journaled notification for the bus, or leaves it in the journal when the bound is reached.</summary>
    /// <param name="republished">From the journal again (the recovery sweep): not counted as left there a second time.</param>
    public void Enqueue(NotificationAccepted message, bool republished = false)
    {
        if (!TryHold(message.NotificationId))
        {
            if (!_held.ContainsKey(message.NotificationId))
            {
                _leftInJournal = true;
                if (!republished)
                {
                    Interlocked.Increment(ref _leftCount);
                    AlertingMetrics.LeftInJournal.Inc();
                }
            }
            return;
        }
        _queue.Writer.TryWrite((message, System.Diagnostics.Activity.Current?.Context ?? default));
    }

    /// <summary>
    /// The consumer is done with the notification (applied, or given up after its last retry: then the journal still holds
    /// it unapplied, and the recovery sweep brings it back).
    /// </summary>
    public void Settled(string notificationId)
    {
        if (_warmUps.TryRemove(notificationId, out var warmUp)) warmUp.TrySetResult();
        if (_heldUntilApplied) Release(notificationId);
    }

    /// <summary>Completes when the consumer has seen <paramref name="notificationId"/> (the start's warm-up round trip).</summary>
    internal Task WatchForWarmUp(string notificationId) =>
        _warmUps.GetOrAdd(notificationId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    private bool TryHold(string notificationId)
    {
        if (Interlocked.Increment(ref _heldCount) > Bound)
        {
            Interlocked.Decrement(ref _heldCount);
            return false;
        }
        if (!_held.TryAdd(notificationId, Environment.TickCount64))
        {
            Interlocked.Decrement(ref _heldCount); // already on its way
            return false;
        }
        var held = Volatile.Read(ref _heldCount);
        int peak;
        while (held > (peak = Volatile.Read(ref _peakHeld)) && Interlocked.CompareExchange(ref _peakHeld, held, peak) != peak) { }
        AlertingMetrics.BusHeld.Set(held);
        return true;
    }

    private void Release(string notificationId)
    {
        if (!_held.TryRemove(notificationId, out _)) return;
        var held = Interlocked.Decrement(ref _heldCount);
        AlertingMetrics.BusHeld.Set(held);
        if (_leftInJournal && held <= Bound / 2 && _room.CurrentCount == 0)
        {
            try { _room.Release(); }
            catch (SemaphoreFullException) { } // already signalled
        }
    }

    /// <summary>How long a notification may stay held before <see cref="ForgetStale"/> gives its room back.</summary>
    public static readonly TimeSpan HeldAtMost = TimeSpan.FromMinutes(5);

    /// <summary>
    /// A safety valve, run by the recovery sweep: a notification held for longer than <paramref name="olderThan"/> was lost on
    /// the way without the consumer hearing of it (which should not happen). Its room is given back, so the bound can never
    /// stop the journal's backlog for good; the journal still holds it unapplied, and the sweep or a refill publishes it again.
    /// </summary>
    public int ForgetStale(TimeSpan olderThan)
    {
        var cutoff = Environment.TickCount64 - (long)olderThan.TotalMilliseconds;
        var forgotten = 0;
        foreach (var (id, since) in _held)
        {
            if (since > cutoff) continue;
            _leftInJournal = true;
            Release(id);
            forgotten++;
        }
        if (forgotten > 0) LogForgotten(forgotten, olderThan);
        return forgotten;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var refill = RefillAsync(stoppingToken);
        try
        {
            await foreach (var (message, trace) in _queue.Reader.ReadAllAsync(stoppingToken))
            {
                await _slots.WaitAsync(stoppingToken);
                _ = PublishAsync(message, trace, stoppingToken);
            }
        }
        finally
        {
            // Let publishes in flight finish (or fail) before the bus stops under them.
            for (var i = 0; i < MaxInFlight; i++) await _slots.WaitAsync(CancellationToken.None);
            try { await refill; }
            catch (OperationCanceledException) { }
        }
    }

    /// <summary>Publishes from the journal what was left there, as room frees.</summary>
    private async Task RefillAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            await _room.WaitAsync(stoppingToken);
            // After a failed publish, wait before reading the journal again: a broker that returns every publish (no queue
            // bound yet) would otherwise be asked again at once, as fast as it answers.
            var failedAt = Interlocked.Read(ref _lastFailure);
            if (failedAt != 0)
            {
                var backoff = TimeSpan.FromTicks(Math.Min(MaxRefillBackoff.Ticks, FirstRefillBackoff.Ticks << Math.Min(_failedRefills, 5)));
                _failedRefills++;
                var wait = backoff - TimeSpan.FromMilliseconds(Environment.TickCount64 - failedAt);
                if (wait > TimeSpan.Zero) await Task.Delay(wait, stoppingToken);
            }
            else _failedRefills = 0;
            try
            {
                await RefillOnceAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The recovery sweep publishes them later; try again on the next release.
                LogRefillFailed(ex);
                _leftInJournal = true;
            }
        }
    }

    /// <summary>One refill: the oldest groups with unapplied notifications, as many as there is room for.</summary>
    internal async Task<int> RefillOnceAsync(CancellationToken cancellationToken)
    {
        // Cleared before reading: a notification left in the journal after this point sets it again; one left before is
        // committed, so the read below sees it.
        _leftInJournal = false;
        var room = Bound - Held;
        if (room <= 0)
        {
            _leftInJournal = true;
            return 0;
        }
        // Held groups come back too (their latest may be held already): ask for enough to fill the room besides them.
        var want = room + Held;
        var rows = await journal.LatestUnappliedPerGroupAsync(long.MaxValue, want, cancellationToken);
        var queued = 0;
        foreach (var (id, groupId) in rows)
        {
            if (_held.ContainsKey(id)) continue;
            if (!TryHold(id))
            {
                _leftInJournal = true;
                break;
            }
            _queue.Writer.TryWrite((new NotificationAccepted(id, groupId, NotificationIdentity.PartitionKey(groupId)), default));
            queued++;
        }
        if (rows.Count >= want) _leftInJournal = true; // there may be more
        return queued;
    }

    private async Task PublishAsync(NotificationAccepted message, System.Diagnostics.ActivityContext trace, CancellationToken stoppingToken)
    {
        using var activity = trace == default ? null
            : Tracing.Source.StartActivity("publish notification", System.Diagnostics.ActivityKind.Internal, trace);
        activity?.SetTag("b25.notification_id", message.NotificationId);
        var published = false;
        try
        {
            await bus.Publish(message, context => context.Mandatory = true, stoppingToken);
            published = true;
            Interlocked.Exchange(ref _lastFailure, 0);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
        {
            OnPublishFailed(ex, message.NotificationId);
        }
        catch (OperationCanceledException)
        {
            // Stopping: the journal still holds it, the next start's sweep publishes it.
        }
        finally
        {
            // On a broker the backlog waits there: held until confirmed. In memory it is held until the consumer is done.
            if (!_heldUntilApplied || !published) Release(message.NotificationId);
            _slots.Release();
        }
    }

    private void OnPublishFailed(Exception ex, string notificationId)
    {
        _leftInJournal = true;
        var now = Environment.TickCount64;
        Interlocked.Exchange(ref _lastFailure, now);
        Interlocked.Increment(ref _publishFailures);
        AlertingMetrics.PublishFailures.Inc();
        Interlocked.Increment(ref _unloggedFailures);
        var logged = Interlocked.Read(ref _lastFailureLog);
        if (logged != 0 && now - logged < (long)FailureLogEvery.TotalMilliseconds) return;
        if (Interlocked.CompareExchange(ref _lastFailureLog, now, logged) != logged) return;
        LogPublishFailed(ex, notificationId, Interlocked.Exchange(ref _unloggedFailures, 0),
            ex is MessageReturnedException ? "no queue took it (RabbitMQ returned it: nothing bound to the exchange yet)" : ex.Message);
    }

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning,
        Message = "Notification {NotificationId} journaled but not published to the bus ({Reason}); {Failures} publish(es) failed since the last such line; each is published again from the journal")]
    private partial void LogPublishFailed(Exception ex, string notificationId, long failures, string reason);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Warning, Message = "{Count} notification(s) held for the bus for over {HeldAtMost} were forgotten: their room is given back and the journal publishes them again")]
    private partial void LogForgotten(int count, TimeSpan heldAtMost);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "Could not read the journal to publish the notifications left there; the recovery sweep will publish them")]
    private partial void LogRefillFailed(Exception ex);
}
