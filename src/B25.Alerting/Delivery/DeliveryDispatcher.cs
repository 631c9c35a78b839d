using System.Collections.Concurrent;
using B25.Alerting.Observability;
using B25.Alerting.Storage;

namespace B25.Alerting.Delivery;

/// <summary>
/// Sends the deliveries the incident processor wrote (the outbox). One worker per target keeps a
/// target's messages in order and under its send budget; targets run in parallel. A delivery is
/// marked sent only after the channel accepted it; a transient failure leaves it queued with a
/// backoff, so a crash or an outage never loses a page. With several replicas, a target's worker runs
/// only in the replica that holds the target's claim (see <see cref="IDeliveryOutbox"/>).
/// </summary>
internal sealed partial class DeliveryDispatcher : BackgroundService
{
    private static readonly TimeSpan MaxIdleWait = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromMinutes(5);

    private readonly IDeliveryOutbox _outbox;
    private readonly IIncidentReadModel _incidents;
    private readonly IStorageProvider _provider;
    private readonly DeliverySignal _signal;
    private readonly TimeProvider _time;
    private readonly ILogger<DeliveryDispatcher> _logger;
    private readonly Dictionary<string, IChannelNotifier> _notifiers;
    private readonly Dictionary<(string Channel, string Target), Worker> _workers = new();
    // Results of calls that were made but could not be recorded (storage fault), per target. While one is
    // held, its target sends nothing: recording it comes first, so nothing is sent twice.
    private readonly ConcurrentDictionary<(string Channel, string Target), HeldResult> _held = new();
    private readonly StorageStatus _storage;
    private readonly EnrichmentStage _enrichment;
    private CancellationToken _stopping;

    public DeliveryDispatcher(IDeliveryOutbox outbox, IIncidentReadModel incidents, IStorageProvider provider, DeliverySignal signal,
        IEnumerable<IChannelNotifier> notifiers, TimeProvider time, StorageStatus storage, EnrichmentStage enrichment, ILogger<DeliveryDispatcher> logger)
    {
        _enrichment = enrichment;
        _storage = storage;
        _outbox = outbox;
        _incidents = incidents;
        _provider = provider;
        _signal = signal;
        _time = time;
        _logger = logger;
        _notifiers = notifiers.ToDictionary(n => n.Channel);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        // Other replicas' processors queue deliveries too: wake up when they commit some.
        _ = _provider.ListenForDeliveriesAsync(_signal.Notify, stoppingToken);
        // A wake-up that names its targets starts their workers at once; the look at the whole outbox (for
        // retries coming due, other replicas' dead claims, unnamed wake-ups) runs when due or asked for.
        // Under a storm that look, once per wake-up, was most of the database's work.
        var nextLook = _time.GetUtcNow();
        while (!stoppingToken.IsCancellationRequested)
        {
            var (everyTarget, targets) = _signal.Take();
            foreach (var target in targets) StartOrPoke(target);
            if (everyTarget || _time.GetUtcNow() >= nextLook)
            {
                TimeSpan wait;
                try
                {
                    wait = await ScheduleAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogLoopFailed(ex);
                    wait = MaxIdleWait;
                }
                nextLook = _time.GetUtcNow() + wait;
            }
            await _signal.WaitAsync(nextLook - _time.GetUtcNow(), stoppingToken);
        }
    }

    /// <summary>
    /// Stops the loop, then waits (within the host's shutdown time) for the target workers, which see the same cancellation: a
    /// call already made gets recorded before the host closes storage under it.
    /// </summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        Task[] running;
        lock (_workers) running = _workers.Values.Select(w => w.Task).OfType<Task>().ToArray();
        try
        {
            await Task.WhenAll(running).WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The host's shutdown time ran out: what a worker had not recorded is sent again after the restart.
        }
    }

    /// <summary>Starts a worker for every target with due work; returns how long to sleep.</summary>
    private async Task<TimeSpan> ScheduleAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        // A group (incident, target) is due when all of its pending deliveries are: a post that waits
        // for a retry holds back the edits behind it.
        var groups = await _outbox.PendingGroupsAsync(cancellationToken);
        AlertingMetrics.PendingDeliveries.Set(await _outbox.PendingCountAsync(cancellationToken));

        foreach (var target in groups.Where(g => g.DueAt <= now).Select(g => (g.Channel, g.Target)).Distinct())
            StartOrPoke(target);

        var next = groups.Where(g => g.DueAt > now).Select(g => g.DueAt).DefaultIfEmpty(long.MaxValue).Min();
        var wait = next == long.MaxValue ? MaxIdleWait : TimeSpan.FromMilliseconds(Math.Clamp(next - now, 10, MaxIdleWait.TotalMilliseconds));
        return wait;
    }

    private void StartOrPoke((string Channel, string Target) key)
    {
        lock (_workers)
        {
            if (_workers.TryGetValue(key, out var running))
            {
                running.Dirty = true;
                return;
            }
            var worker = new Worker();
            _workers[key] = worker;
            worker.Task = Task.Run(() => RunWorkerAsync(key, worker));
        }
    }

    private async Task RunWorkerAsync((string Channel, string Target) key, Worker worker)
    {
        while (true)
        {
            try
            {
                while (await DeliverDueAsync(key.Channel, key.Target, _stopping)) { }
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
            }
            catch (Exception ex)
            {
                LogWorkerFailed(ex, key.Channel, key.Target);
            }
            lock (_workers)
            {
                if (!worker.Dirty || _stopping.IsCancellationRequested)
                {
                    _workers.Remove(key);
                    return;
                }
                worker.Dirty = false;
            }
        }
    }

    /// <summary>Delivers every due incident group of one target; true when it did some work.</summary>
    internal async Task<bool> DeliverDueAsync(string channel, string target, CancellationToken cancellationToken)
    {
        if (!_notifiers.TryGetValue(channel, out var notifier))
        {
            LogNoNotifier(channel);
            return false;
        }
        if (_held.TryGetValue((channel, target), out var held))
        {
            try
            {
                await WriteAsync(channel, target, held.IncidentId, held.Batch, held.Outcomes, held.NewMessage, held.Epoch, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                _storage.ReportFailure("recording deliveries", ex);
                return false; // no new sends until this is recorded
            }
            _held.TryRemove((channel, target), out _);
            _storage.ReportSuccess();
            LogHeldRecorded(channel, target, held.IncidentId);
        }
        // Another replica may own this target: then it sends, and this one leaves it alone.
        var claim = await _outbox.ClaimTargetAsync(channel, target, null, cancellationToken);
        if (claim is null) return false;
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var pending = await _outbox.DueAsync(channel, target, now, 50, cancellationToken);
        if (pending.Count == 0) return false;

        var claimedJustNow = true;
        foreach (var group in pending.GroupBy(d => d.IncidentId))
        {
            var batch = group.ToList();
            // Renewed per incident, so a long batch (rate-limited sends) keeps the target; the first incident goes
            // on the claim taken just above (one transaction less per wake-up in a storm of single-incident wakes).
            // At the same epoch: a replica whose claim passed to another one and back starts over from the outbox.
            if (!claimedJustNow)
            {
                var renewed = await _outbox.ClaimTargetAsync(channel, target, claim.Epoch, cancellationToken);
                if (renewed is null) return false;
                claim = renewed;
            }
            claimedJustNow = false;
            var incident = await _incidents.LoadAsync(group.Key, 40, cancellationToken);
            if (incident is not null && notifier.ShowsContext) incident = await _enrichment.EnrichAsync(incident, cancellationToken);
            var message = await _outbox.MessageAsync(group.Key, channel, target, cancellationToken);
            var recorder = new BatchRecorder(this, channel, target, group.Key, batch, claim);
            DeliveryBatchResult result;
            try
            {
                result = incident is null
                    ? new DeliveryBatchResult(batch.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Failed, "incident not found")).ToList(), null)
                    : await notifier.DeliverAsync(incident, target, batch, message, recorder, cancellationToken);
            }
            catch (DeliveryNotRecordedException)
            {
                return false; // storage fault: this target stops until its results can be recorded
            }
            catch (ClaimLostException)
            {
                LogClaimLost(channel, target);
                return false; // another replica owns the target now: it sends
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // A bug or a bad template must not lose the page: keep it queued, say so loudly.
                LogNotifierThrew(ex, channel, target, group.Key);
                result = new DeliveryBatchResult(batch.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Retry, ex.GetType().Name)).ToList(), null);
            }
            // What the notifier returned and did not record itself.
            var rest = result.Outcomes.Where(o => !recorder.Recorded.Contains(o.DeliveryId)).ToList();
            var newMessage = recorder.MessageRecorded ? null : result.NewMessage;
            if (rest.Count == 0 && newMessage is null) continue;
            try
            {
                await recorder.RecordAsync(rest, newMessage, cancellationToken);
            }
            catch (DeliveryNotRecordedException)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// Writes the outcomes of calls (and the message a post created) in one transaction. A retry holds
    /// back everything of the group that did not complete, to keep edits behind their post.
    /// </summary>
    private async Task WriteAsync(string channel, string target, string incidentId, List<PendingDelivery> batch,
        IReadOnlyList<DeliveryOutcome> outcomeList, DeliveredMessage? newMessage, long epoch, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var nowMs = now.ToUnixTimeMilliseconds();
        var byId = batch.ToDictionary(d => d.Id);
        var retry = outcomeList.FirstOrDefault(o => o.Kind == DeliveryOutcomeKind.Retry);
        DateTimeOffset? retryAt = null;
        if (retry is not null)
        {
            var attempts = batch.Max(d => d.Attempts) + 1;
            // A vendor's Retry-After is a floor: jitter only ever lengthens the wait.
            var backoff = retry.RetryAfter ?? TimeSpan.FromSeconds(Math.Min(MaxBackoff.TotalSeconds, Math.Pow(2, Math.Min(attempts, 12))));
            backoff = TimeSpan.FromMilliseconds(backoff.TotalMilliseconds * (1 + Random.Shared.NextDouble() * 0.2));
            if (retry.RetryAfter is null && backoff > MaxBackoff) backoff = MaxBackoff;
            retryAt = now + backoff;
        }

        await _outbox.RecordAsync(new DeliveryRecord(incidentId, channel, target, batch, outcomeList, newMessage,
            retryAt?.ToUnixTimeMilliseconds(), nowMs, epoch), cancellationToken);
        // A vendor's Retry-After (or the guard's own wait) holds the whole target, for whichever replica owns
        // it next. A wait for one incident's unknown outcome does not.
        if (retry is { RetryAfter: { } floor, OutcomeUnknown: false })
            await _outbox.HoldAsync(channel, target, (now + floor).ToUnixTimeMilliseconds(), cancellationToken);

        if (!MetricsScope.Counts) return;
        foreach (var outcome in outcomeList)
        {
            AlertingMetrics.Deliveries.WithLabels(channel, Label(outcome.Kind)).Inc();
            if (outcome.Kind == DeliveryOutcomeKind.Sent && byId.TryGetValue(outcome.DeliveryId, out var d))
                AlertingMetrics.DeliveryLatency.WithLabels(channel).Observe(Math.Max(0, nowMs - d.AcceptedAt) / 1000.0);
        }
    }

    /// <summary>The dispatcher's recorder for one batch: records each call as it completes.</summary>
    private sealed class BatchRecorder(DeliveryDispatcher dispatcher, string channel, string target, string incidentId, List<PendingDelivery> batch,
        TargetClaim claim)
        : IDeliveryRecorder
    {
        private TargetClaim _claim = claim;

        public HashSet<long> Recorded { get; } = [];

        public bool MessageRecorded { get; private set; }

        public async Task EnsureOwnerAsync(TimeSpan callTime, CancellationToken cancellationToken)
        {
            if (dispatcher._provider.SingleProcess) return;
            // The lease runs from the last renewal's start; the call must be over well before it ends (a quarter of the
            // lease to spare), or the replica that takes the target over next could send alongside or ahead of it.
            var lease = dispatcher._outbox.ClaimLease;
            if (dispatcher._time.GetUtcNow() - _claim.RenewedAt + callTime <= lease * 0.75) return;
            TargetClaim? renewed;
            try
            {
                renewed = await dispatcher._outbox.ClaimTargetAsync(channel, target, _claim.Epoch, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                dispatcher._storage.ReportFailure("renewing a claim", ex);
                throw new DeliveryNotRecordedException(ex);
            }
            _claim = renewed ?? throw new ClaimLostException(channel, target);
        }

        public async Task MarkSendingAsync(IReadOnlyCollection<long> deliveryIds, CancellationToken cancellationToken)
        {
            var started = dispatcher._time.GetUtcNow();
            try
            {
                await dispatcher._outbox.MarkSendingAsync(channel, target, deliveryIds, started.ToUnixTimeMilliseconds(),
                    cancellationToken, _claim.Epoch);
                _claim = _claim with { RenewedAt = started };
            }
            catch (Exception ex) when (ex is not (OperationCanceledException or ClaimLostException))
            {
                var first = dispatcher._storage.Fault is null;
                dispatcher._storage.ReportFailure("marking a send", ex);
                if (first) dispatcher.LogNotMarked(ex, channel, target, incidentId);
                throw new DeliveryNotRecordedException(ex);
            }
        }

        public async Task RecordAsync(IReadOnlyList<DeliveryOutcome> outcomes, DeliveredMessage? newMessage, CancellationToken cancellationToken)
        {
            foreach (var o in outcomes) Recorded.Add(o.DeliveryId);
            if (newMessage is not null) MessageRecorded = true;
            try
            {
                await dispatcher.WriteAsync(channel, target, incidentId, batch, outcomes, newMessage, _claim.Epoch, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // A worker stops at the first result it cannot record, so a target holds at most one.
                dispatcher._storage.ReportFailure("recording deliveries", ex);
                dispatcher._held[(channel, target)] = new HeldResult(incidentId, batch, outcomes, newMessage, _claim.Epoch);
                dispatcher.LogNotRecorded(ex, channel, target, incidentId);
                throw new DeliveryNotRecordedException(ex);
            }
        }
    }

    private sealed record HeldResult(string IncidentId, List<PendingDelivery> Batch, IReadOnlyList<DeliveryOutcome> Outcomes, DeliveredMessage? NewMessage,
        long Epoch);

    private static string Label(DeliveryOutcomeKind kind) => DeliveryOutbox.Label(kind);

    private sealed class Worker
    {
        public volatile bool Dirty;
        public Task? Task;
    }

    [LoggerMessage(EventId = 3205, Level = LogLevel.Critical, Message = "STORAGE FAULT: a {Channel} call for {Target} (incident {IncidentId}) was made but could not be recorded; this target sends nothing until it is recorded")]
    private partial void LogNotRecorded(Exception ex, string channel, string target, string incidentId);

    [LoggerMessage(EventId = 3206, Level = LogLevel.Error, Message = "Storage fault: could not mark a {Channel} send for {Target} (incident {IncidentId}); nothing was sent, it is retried")]
    private partial void LogNotMarked(Exception ex, string channel, string target, string incidentId);

    [LoggerMessage(EventId = 3207, Level = LogLevel.Warning, Message = "Storage works again: the held {Channel} result for {Target} (incident {IncidentId}) is recorded; sending resumes")]
    private partial void LogHeldRecorded(string channel, string target, string incidentId);

    [LoggerMessage(EventId = 3208, Level = LogLevel.Warning, Message = "Another replica took over {Channel} {Target} (this replica's claim expired); it sends from here on")]
    private partial void LogClaimLost(string channel, string target);

    [LoggerMessage(EventId = 3201, Level = LogLevel.Error, Message = "Delivery scheduling failed; retrying in a second")]
    private partial void LogLoopFailed(Exception ex);

    [LoggerMessage(EventId = 3202, Level = LogLevel.Error, Message = "Delivery worker for {Channel} {Target} failed; its deliveries stay queued")]
    private partial void LogWorkerFailed(Exception ex, string channel, string target);

    [LoggerMessage(EventId = 3203, Level = LogLevel.Error, Message = "No notifier for channel {Channel}: its deliveries stay queued")]
    private partial void LogNoNotifier(string channel);

    [LoggerMessage(EventId = 3204, Level = LogLevel.Error, Message = "The {Channel} notifier threw for {Target}, incident {IncidentId}; the deliveries stay queued and are retried")]
    private partial void LogNotifierThrew(Exception ex, string channel, string target, string incidentId);
}
