using System.Collections.Concurrent;
using System.Text.Json;
using B25.Alerting.Observability;
using B25.Alerting.Storage;
using B25.Alerting.Webhooks;
using Dapper;
using Microsoft.Data.Sqlite;

namespace B25.Alerting.Delivery;

/// <summary>
/// Sends the deliveries the incident processor wrote (the outbox). One worker per target keeps a
/// target's messages in order and under its send budget; targets run in parallel. A delivery is
/// marked sent only after the channel accepted it; a transient failure leaves it queued with a
/// backoff, so a crash or an outage never loses a page.
/// </summary>
internal sealed partial class DeliveryDispatcher : BackgroundService
{
    private static readonly TimeSpan MaxIdleWait = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromMinutes(5);

    private readonly Database _database;
    private readonly DeliverySignal _signal;
    private readonly TimeProvider _time;
    private readonly ILogger<DeliveryDispatcher> _logger;
    private readonly Dictionary<string, IChannelNotifier> _notifiers;
    private readonly Dictionary<(string Channel, string Target), Worker> _workers = new();
    // Results of calls that were made but could not be recorded (storage fault), per target. While one is
    // held, its target sends nothing: recording it comes first, so nothing is sent twice.
    private readonly ConcurrentDictionary<(string Channel, string Target), HeldResult> _held = new();
    private readonly StorageStatus _storage;
    private CancellationToken _stopping;

    public DeliveryDispatcher(Database database, DeliverySignal signal, IEnumerable<IChannelNotifier> notifiers, TimeProvider time,
        StorageStatus storage, ILogger<DeliveryDispatcher> logger)
    {
        _storage = storage;
        _database = database;
        _signal = signal;
        _time = time;
        _logger = logger;
        _notifiers = notifiers.ToDictionary(n => n.Channel);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        while (!stoppingToken.IsCancellationRequested)
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
            await _signal.WaitAsync(wait, stoppingToken);
        }
    }

    /// <summary>Starts a worker for every target with due work; returns how long to sleep.</summary>
    private async Task<TimeSpan> ScheduleAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await _database.OpenAsync(cancellationToken);
        // A group (incident, target) is due when all of its pending deliveries are: a post that waits
        // for a retry holds back the edits behind it.
        var groups = (await connection.QueryAsync<(string Channel, string Target, long DueAt)>(
            """
            SELECT channel AS Channel, target AS Target, MAX(next_attempt_at) AS DueAt
            FROM deliveries WHERE status = 'pending'
            GROUP BY incident_id, channel, target
            """)).ToList();
        AlertingMetrics.PendingDeliveries.Set(await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'"));

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
                await WriteAsync(channel, target, held.IncidentId, held.Batch, held.Outcomes, held.NewMessage, cancellationToken);
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
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        List<PendingDelivery> pending;
        await using (var connection = await _database.OpenAsync(cancellationToken))
        {
            pending = (await connection.QueryAsync<PendingDelivery>(
                """
                SELECT id AS Id, incident_id AS IncidentId, channel AS Channel, target AS Target, kind AS Kind, revision AS Revision,
                       subject AS Subject, payload AS Payload, attempts AS Attempts, accepted_at AS AcceptedAt, sending_since AS SendingSince
                FROM deliveries
                WHERE status = 'pending' AND channel = @channel AND target = @target AND incident_id IN (
                    SELECT incident_id FROM deliveries WHERE status = 'pending' AND channel = @channel AND target = @target
                    GROUP BY incident_id HAVING MAX(next_attempt_at) <= @now LIMIT 50)
                ORDER BY id
                """, new { channel, target, now })).ToList();
        }
        if (pending.Count == 0) return false;

        foreach (var group in pending.GroupBy(d => d.IncidentId))
        {
            var batch = group.ToList();
            IncidentView? incident;
            DeliveredMessage? message;
            await using (var connection = await _database.OpenAsync(cancellationToken))
            {
                incident = await LoadIncidentAsync(connection, group.Key);
                message = await connection.QuerySingleOrDefaultAsync<DeliveredMessage>(
                    "SELECT address AS Address, message_id AS MessageId FROM delivery_messages WHERE incident_id = @IncidentId AND channel = @channel AND target = @target",
                    new { IncidentId = group.Key, channel, target });
            }
            var recorder = new BatchRecorder(this, channel, target, group.Key, batch);
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
        IReadOnlyList<DeliveryOutcome> outcomeList, DeliveredMessage? newMessage, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var nowMs = now.ToUnixTimeMilliseconds();
        var byId = batch.ToDictionary(d => d.Id);
        var outcomes = outcomeList.ToDictionary(o => o.DeliveryId);
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

        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var write = await _database.BeginWriteAsync(connection, cancellationToken);
        var tx = write.Transaction;
        if (newMessage is { } created)
        {
            await connection.ExecuteAsync(
                """
                INSERT OR IGNORE INTO delivery_messages (incident_id, channel, target, address, message_id, created_at)
                VALUES (@incidentId, @channel, @target, @Address, @MessageId, @nowMs)
                """, new { incidentId, channel, target, created.Address, created.MessageId, nowMs }, tx);
        }
        foreach (var delivery in batch)
        {
            if (outcomes.TryGetValue(delivery.Id, out var outcome) && outcome.Kind != DeliveryOutcomeKind.Retry)
            {
                var status = Label(outcome.Kind);
                await connection.ExecuteAsync(
                    "UPDATE deliveries SET status = @status, attempts = attempts + @counted, last_error = @Error, completed_at = @nowMs, sending_since = NULL WHERE id = @Id AND status = 'pending'",
                    new { status, counted = outcome.Kind == DeliveryOutcomeKind.Merged ? 0 : 1, outcome.Error, nowMs, delivery.Id }, tx);
            }
            else if (retryAt is not null)
            {
                await connection.ExecuteAsync(
                    """
                    UPDATE deliveries SET attempts = attempts + 1, last_error = @error, next_attempt_at = @at,
                        sending_since = CASE WHEN @unknown THEN sending_since ELSE NULL END
                    WHERE id = @Id AND status = 'pending'
                    """,
                    new { error = outcome?.Error ?? retry!.Error, at = retryAt.Value.ToUnixTimeMilliseconds(), unknown = outcome?.OutcomeUnknown ?? false, delivery.Id }, tx);
            }
        }
        await tx.CommitAsync(cancellationToken);

        foreach (var outcome in outcomeList)
        {
            AlertingMetrics.Deliveries.WithLabels(channel, Label(outcome.Kind)).Inc();
            if (outcome.Kind == DeliveryOutcomeKind.Sent && byId.TryGetValue(outcome.DeliveryId, out var d))
                AlertingMetrics.DeliveryLatency.WithLabels(channel).Observe(Math.Max(0, nowMs - d.AcceptedAt) / 1000.0);
        }
    }

    private async Task MarkSendingAsync(IReadOnlyCollection<long> ids, CancellationToken cancellationToken)
    {
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var write = await _database.BeginWriteAsync(connection, cancellationToken);
        await connection.ExecuteAsync(
            "UPDATE deliveries SET sending_since = COALESCE(sending_since, @nowMs) WHERE id IN @ids AND status = 'pending'",
            new { nowMs, ids }, write.Transaction);
        await write.CommitAsync(cancellationToken);
    }

    /// <summary>The dispatcher's recorder for one batch: records each call as it completes.</summary>
    private sealed class BatchRecorder(DeliveryDispatcher dispatcher, string channel, string target, string incidentId, List<PendingDelivery> batch)
        : IDeliveryRecorder
    {
        public HashSet<long> Recorded { get; } = [];

        public bool MessageRecorded { get; private set; }

        public async Task MarkSendingAsync(IReadOnlyCollection<long> deliveryIds, CancellationToken cancellationToken)
        {
            try
            {
                await dispatcher.MarkSendingAsync(deliveryIds, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
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
                await dispatcher.WriteAsync(channel, target, incidentId, batch, outcomes, newMessage, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // A worker stops at the first result it cannot record, so a target holds at most one.
                dispatcher._storage.ReportFailure("recording deliveries", ex);
                dispatcher._held[(channel, target)] = new HeldResult(incidentId, batch, outcomes, newMessage);
                dispatcher.LogNotRecorded(ex, channel, target, incidentId);
                throw new DeliveryNotRecordedException(ex);
            }
        }
    }

    private sealed record HeldResult(string IncidentId, List<PendingDelivery> Batch, IReadOnlyList<DeliveryOutcome> Outcomes, DeliveredMessage? NewMessage);

    private static string Label(DeliveryOutcomeKind kind) => kind switch
    {
        DeliveryOutcomeKind.Sent => "sent",
        DeliveryOutcomeKind.Merged => "merged",
        DeliveryOutcomeKind.Retry => "retry",
        DeliveryOutcomeKind.Skipped => "skipped",
        _ => "failed",
    };

    internal static async Task<IncidentView?> LoadIncidentAsync(SqliteConnection connection, string incidentId, int maxAlerts = 40)
    {
        var row = await connection.QuerySingleOrDefaultAsync<IncidentRow>(
            """
            SELECT id AS Id, receiver AS Receiver, group_key AS GroupKey, state AS State, revision AS Revision, opened_at AS OpenedAt,
                   closed_at AS ClosedAt, group_labels AS GroupLabels, common_labels AS CommonLabels,
                   common_annotations AS CommonAnnotations, external_url AS ExternalUrl
            FROM incidents WHERE id = @incidentId
            """, new { incidentId });
        if (row is null) return null;
        var counts = await connection.QuerySingleAsync<(long Firing, long Resolved)>(
            "SELECT COALESCE(SUM(status = 'firing'), 0) AS Firing, COALESCE(SUM(status = 'resolved'), 0) AS Resolved FROM alerts WHERE incident_id = @incidentId",
            new { incidentId });
        var alerts = (await connection.QueryAsync<AlertRow>(
                """
                SELECT fingerprint AS Fingerprint, starts_at AS StartsAt, status AS Status, ends_at AS EndsAt, labels AS Labels,
                       annotations AS Annotations, generator_url AS GeneratorUrl
                FROM alerts WHERE incident_id = @incidentId
                ORDER BY status = 'resolved', starts_at, fingerprint LIMIT @maxAlerts
                """, new { incidentId, maxAlerts }))
            .Select(a => new AlertView(a.Fingerprint, a.StartsAt, a.Status, a.EndsAt, Labels(a.Labels), Labels(a.Annotations), a.GeneratorUrl))
            .ToList();
        return new IncidentView(row.Id, row.Receiver, row.GroupKey, row.State, row.Revision,
            DateTimeOffset.FromUnixTimeMilliseconds(row.OpenedAt),
            row.ClosedAt is { } closed ? DateTimeOffset.FromUnixTimeMilliseconds(closed) : null,
            Labels(row.GroupLabels), Labels(row.CommonLabels), Labels(row.CommonAnnotations), row.ExternalUrl,
            (int)counts.Firing, (int)counts.Resolved, alerts);
    }

    private static Dictionary<string, string> Labels(string json) =>
        JsonSerializer.Deserialize(json, WebhookJsonContext.Default.DictionaryStringString) ?? [];

    private sealed class Worker
    {
        public volatile bool Dirty;
        public Task? Task;
    }

    private sealed record IncidentRow(string Id, string Receiver, string GroupKey, string State, long Revision, long OpenedAt, long? ClosedAt,
        string GroupLabels, string CommonLabels, string CommonAnnotations, string ExternalUrl);

    private sealed record AlertRow(string Fingerprint, string StartsAt, string Status, string? EndsAt, string Labels, string Annotations, string GeneratorUrl);

    [LoggerMessage(EventId = 3205, Level = LogLevel.Critical, Message = "STORAGE FAULT: a {Channel} call for {Target} (incident {IncidentId}) was made but could not be recorded; this target sends nothing until it is recorded")]
    private partial void LogNotRecorded(Exception ex, string channel, string target, string incidentId);

    [LoggerMessage(EventId = 3206, Level = LogLevel.Error, Message = "Storage fault: could not mark a {Channel} send for {Target} (incident {IncidentId}); nothing was sent, it is retried")]
    private partial void LogNotMarked(Exception ex, string channel, string target, string incidentId);

    [LoggerMessage(EventId = 3207, Level = LogLevel.Warning, Message = "Storage works again: the held {Channel} result for {Target} (incident {IncidentId}) is recorded; sending resumes")]
    private partial void LogHeldRecorded(string channel, string target, string incidentId);

    [LoggerMessage(EventId = 3201, Level = LogLevel.Error, Message = "Delivery scheduling failed; retrying in a second")]
    private partial void LogLoopFailed(Exception ex);

    [LoggerMessage(EventId = 3202, Level = LogLevel.Error, Message = "Delivery worker for {Channel} {Target} failed; its deliveries stay queued")]
    private partial void LogWorkerFailed(Exception ex, string channel, string target);

    [LoggerMessage(EventId = 3203, Level = LogLevel.Error, Message = "No notifier for channel {Channel}: its deliveries stay queued")]
    private partial void LogNoNotifier(string channel);

    [LoggerMessage(EventId = 3204, Level = LogLevel.Error, Message = "The {Channel} notifier threw for {Target}, incident {IncidentId}; the deliveries stay queued and are retried")]
    private partial void LogNotifierThrew(Exception ex, string channel, string target, string incidentId);
}
