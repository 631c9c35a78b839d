using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using B25.Alerting.Delivery;
using B25.Alerting.Observability;
using B25.Alerting.Routing;
using B25.Alerting.Storage;
using B25.Alerting.Webhooks;
using Dapper;
using Microsoft.Data.Sqlite;

namespace B25.Alerting.Incidents;

internal enum ProcessOutcome { AlreadyProcessed, NotFound, None, Repeat, Opened, Changed, Closed, Quarantined }

/// <summary>
/// Applies one journaled notification to its alert group inside one write transaction: the state
/// machine's transition, the alerts it touches, and the deliveries it causes (an outbox), then marks
/// the notification processed. Replaying a processed notification does nothing.
/// </summary>
internal sealed partial class IncidentProcessor(
    Database database,
    Router router,
    IEnumerable<IChannelNotifier> channels,
    TimeProvider time,
    DeliverySignal signal,
    ILogger<IncidentProcessor> logger)
{
    private readonly Dictionary<string, IChannelNotifier> notifiers = channels.ToDictionary(c => c.Channel);

    /// <summary>A notification that fails this many times (storage faults not counted) is quarantined.</summary>
    public const int MaxAttempts = 3;

    // One group at a time in this process: applying a group's notifications reads its state outside the
    // write lock, which only holds while nobody else applies the same group. Striped, so memory stays flat.
    private readonly SemaphoreSlim[] _groupGates = Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1)).ToArray();

    /// <summary>
    /// Applies the notification, after every earlier journaled notification of its group that is not yet
    /// applied, in journal order: whatever order the bus delivers them in (redelivery, the recovery sweep,
    /// a broker outage), a group's notifications change its incident in the order they were accepted.
    /// </summary>
    public async Task<ProcessOutcome> ProcessAsync(string notificationId, CancellationToken cancellationToken)
    {
        JournalHead? head;
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            head = await connection.QuerySingleOrDefaultAsync<JournalHead>(
                "SELECT seq AS Seq, id AS Id, group_id AS GroupId, processed_at AS ProcessedAt FROM notifications WHERE id = @notificationId",
                new { notificationId });
        }
        if (head is null) return ProcessOutcome.NotFound;
        if (head.ProcessedAt is not null) return ProcessOutcome.AlreadyProcessed;

        var gate = _groupGates[(int)(NotificationIdentity.PartitionKey(head.GroupId).GetHashCode() & 0x7fffffff) % _groupGates.Length];
        await gate.WaitAsync(cancellationToken);
        try
        {
            while (true)
            {
                JournalHead? next;
                await using (var connection = await database.OpenAsync(cancellationToken))
                {
                    next = await connection.QuerySingleOrDefaultAsync<JournalHead>(
                        """
                        SELECT seq AS Seq, id AS Id, group_id AS GroupId, processed_at AS ProcessedAt FROM notifications
                        WHERE group_id = @GroupId AND processed_at IS NULL AND seq <= @Seq ORDER BY seq LIMIT 1
                        """, head);
                }
                // None left: another worker applied this one meanwhile.
                if (next is null) return ProcessOutcome.AlreadyProcessed;
                var outcome = await ApplyGuardedAsync(next, cancellationToken);
                if (next.Seq == head.Seq) return outcome; // the last one in order: no need to look again
                LogAppliedEarlier(next.Id, head.Id, outcome);
            }
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// Applies one notification. One that cannot be applied (a body that does not bind, a bug) is retried
    /// by the bus, and quarantined after <see cref="MaxAttempts"/>: marked processed with outcome
    /// Quarantined, counted and logged, so it never blocks its group or loops forever. Storage faults are
    /// not the notification's fault and are not counted.
    /// </summary>
    private async Task<ProcessOutcome> ApplyGuardedAsync(JournalHead head, CancellationToken cancellationToken)
    {
        try
        {
            return await ApplyAsync(head.Id, cancellationToken);
        }
        catch (Exception ex) when (ex is not (SqliteException or OperationCanceledException or ObjectDisposedException))
        {
            var attempts = await RecordFailedAttemptAsync(head.Seq, ex, cancellationToken);
            if (attempts < MaxAttempts)
            {
                LogApplyFailed(ex, head.Id, attempts, MaxAttempts);
                throw;
            }
            AlertingMetrics.NotificationsQuarantined.Inc();
            AlertingMetrics.NotificationsProcessed.WithLabels("quarantined").Inc();
            LogQuarantined(ex, head.Id, attempts);
            return ProcessOutcome.Quarantined;
        }
    }

    /// <summary>Counts a failed attempt; at the last one, quarantines the notification. Returns the attempts so far.</summary>
    private async Task<long> RecordFailedAttemptAsync(long seq, Exception ex, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var write = await database.BeginWriteAsync(connection, cancellationToken);
        var tx = write.Transaction;
        var error = $"{ex.GetType().Name}: {ex.Message}";
        if (error.Length > 500) error = error[..500];
        await connection.ExecuteAsync("UPDATE notifications SET attempts = attempts + 1, last_error = @error WHERE seq = @seq", new { error, seq }, tx);
        var attempts = await connection.ExecuteScalarAsync<long>("SELECT attempts FROM notifications WHERE seq = @seq", new { seq }, tx);
        if (attempts >= MaxAttempts)
            await connection.ExecuteAsync(
                "UPDATE notifications SET processed_at = @now, outcome = 'Quarantined' WHERE seq = @seq AND processed_at IS NULL",
                new { now = time.GetUtcNow().ToUnixTimeMilliseconds(), seq }, tx);
        await tx.CommitAsync(cancellationToken);
        return attempts;
    }

    private async Task<ProcessOutcome> ApplyAsync(string notificationId, CancellationToken cancellationToken)
    {
        ProcessOutcome outcome;
        IncidentTransition? transition;
        string? incidentId;
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            // Read and decide outside the write lock, so a large notification does not hold up the journal.
            // Notifications of one group are applied one at a time (the group gate), so what was read still
            // holds when the write starts; the checks below catch it if not.
            var row = await LoadAsync(connection, null, notificationId);
            if (row is null) return ProcessOutcome.NotFound;
            if (row.ProcessedAt is not null) return ProcessOutcome.AlreadyProcessed;
            var notification = JsonSerializer.Deserialize(row.Body, WebhookJsonContext.Default.AlertmanagerNotification)
                               ?? throw new JsonException("The journaled body is JSON null.");
            if (notification.Alerts is null) throw new JsonException("The journaled body has no 'alerts'.");
            var snapshot = Read(connection, null, row.GroupId, notification);

            await using var write = await database.BeginWriteAsync(connection, cancellationToken);
            var tx = write.Transaction;
            var current = await LoadAsync(connection, tx, notificationId, withBody: false);
            if (current is null) return ProcessOutcome.NotFound;
            if (current.ProcessedAt is not null) return ProcessOutcome.AlreadyProcessed;
            if (OpenIncidentOf(connection, tx, row.GroupId) != snapshot.Open)
                snapshot = Read(connection, tx, row.GroupId, notification);

            (outcome, transition, incidentId) = Apply(connection, tx, row, notificationId, notification, snapshot);

            await connection.ExecuteAsync(
                "UPDATE notifications SET processed_at = @now, outcome = @outcome WHERE seq = @seq",
                new { now = time.GetUtcNow().ToUnixTimeMilliseconds(), outcome = outcome.ToString(), seq = row.Seq }, tx);
            await tx.CommitAsync(cancellationToken);
        }

        AlertingMetrics.NotificationsProcessed.WithLabels(outcome.ToString().ToLowerInvariant()).Inc();
        switch (outcome)
        {
            case ProcessOutcome.Opened: AlertingMetrics.IncidentsOpened.Inc(); break;
            case ProcessOutcome.Closed: AlertingMetrics.IncidentsClosed.Inc(); break;
            case ProcessOutcome.Repeat: AlertingMetrics.Repeats.Inc(); break;
        }
        if (transition is { ChangesIncident: true })
        {
            LogTransition(incidentId!, outcome, transition.Joined.Count, transition.Resolved.Count);
            signal.Notify();
        }
        return outcome;
    }

    private static async Task<JournalRow?> LoadAsync(SqliteConnection connection, SqliteTransaction? tx, string notificationId, bool withBody = true) =>
        await connection.QuerySingleOrDefaultAsync<JournalRow>(
            $"SELECT seq AS Seq, group_id AS GroupId, received_at AS ReceivedAt, {(withBody ? "body" : "x''")} AS Body, processed_at AS ProcessedAt FROM notifications WHERE id = @notificationId",
            new { notificationId }, tx);

    private static OpenIncident? OpenIncidentOf(SqliteConnection connection, SqliteTransaction? tx, string groupId) =>
        connection.QuerySingleOrDefault<OpenIncident>(
            "SELECT id AS Id, revision AS Revision FROM incidents WHERE group_id = @groupId AND state = 'open'", new { groupId }, tx);

    /// <summary>What the group knows: its open incident and the state of every occurrence this notification or that incident names.</summary>
    private static GroupSnapshot Read(SqliteConnection connection, SqliteTransaction? tx, string groupId, AlertmanagerNotification notification)
    {
        var open = OpenIncidentOf(connection, tx, groupId);
        var known = new Dictionary<AlertKey, AlertState>();
        var openAlerts = new List<AlertKey>();
        if (open is not null)
        {
            foreach (var a in connection.Query<StoredAlert>(
                         "SELECT fingerprint AS Fingerprint, starts_at AS StartsAt, status AS Status FROM alerts WHERE incident_id = @Id", new { open.Id }, tx))
            {
                var key = new AlertKey(a.Fingerprint, a.StartsAt);
                openAlerts.Add(key);
                known[key] = a.Status == "firing" ? AlertState.Firing : AlertState.Resolved;
            }
        }

        var byKey = new Dictionary<AlertKey, AlertmanagerAlert>();
        using (var lookup = connection.CreateCommand())
        {
            lookup.Transaction = tx;
            lookup.CommandText = "SELECT status FROM alerts WHERE group_id = $g AND fingerprint = $f AND starts_at = $s";
            var g = lookup.Parameters.Add("$g", SqliteType.Text);
            var f = lookup.Parameters.Add("$f", SqliteType.Text);
            var s = lookup.Parameters.Add("$s", SqliteType.Text);
            g.Value = groupId;
            foreach (var alert in notification.Alerts!)
            {
                var key = AlertKey.Of(alert);
                byKey.TryAdd(key, alert);
                if (known.ContainsKey(key)) continue;
                f.Value = key.Fingerprint;
                s.Value = key.StartsAt;
                if (lookup.ExecuteScalar() is string status)
                    known[key] = status == "firing" ? AlertState.Firing : AlertState.Resolved;
            }
        }
        return new GroupSnapshot(open, known, openAlerts, byKey);
    }

    private (ProcessOutcome, IncidentTransition, string?) Apply(SqliteConnection connection, SqliteTransaction tx, JournalRow row,
        string notificationId, AlertmanagerNotification notification, GroupSnapshot snapshot)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var (open, known, openAlerts, byKey) = snapshot;
        var transition = IncidentStateMachine.Apply(known, openAlerts, open is not null,
            notification.Alerts!.Select(a => (AlertKey.Of(a), a.IsFiring ? AlertState.Firing : AlertState.Resolved)));

        string? incidentId = open?.Id;
        var revision = (int)(open?.Revision ?? 0);
        var context = new
        {
            GroupLabels = JsonSerializer.Serialize(notification.GroupLabels ?? [], WebhookJsonContext.Default.DictionaryStringString),
            CommonLabels = JsonSerializer.Serialize(notification.CommonLabels ?? [], WebhookJsonContext.Default.DictionaryStringString),
            CommonAnnotations = JsonSerializer.Serialize(notification.CommonAnnotations ?? [], WebhookJsonContext.Default.DictionaryStringString),
            ExternalUrl = notification.ExternalUrl ?? "",
        };

        switch (transition.Kind)
        {
            case TransitionKind.Open:
                incidentId = IncidentIdFor(row.GroupId, notificationId);
                revision = 1;
                connection.Execute(
                    """
                    INSERT INTO incidents (id, group_id, receiver, group_key, state, revision, opened_at, updated_at,
                                           group_labels, common_labels, common_annotations, external_url)
                    VALUES (@incidentId, @GroupId, @receiver, @groupKey, 'open', 1, @now, @now,
                            @GroupLabels, @CommonLabels, @CommonAnnotations, @ExternalUrl)
                    """,
                    new
                    {
                        incidentId, row.GroupId, receiver = notification.Receiver, groupKey = notification.GroupKey, now,
                        context.GroupLabels, context.CommonLabels, context.CommonAnnotations, context.ExternalUrl,
                    }, tx);
                break;
            case TransitionKind.Change:
            case TransitionKind.Close:
                revision++;
                connection.Execute(
                    """
                    UPDATE incidents SET revision = @revision, updated_at = @now,
                        state = CASE WHEN @close THEN 'closed' ELSE state END,
                        closed_at = CASE WHEN @close THEN @now ELSE closed_at END,
                        common_labels = @CommonLabels, common_annotations = @CommonAnnotations, external_url = @ExternalUrl
                    WHERE id = @incidentId
                    """,
                    new
                    {
                        revision, now, close = transition.Kind == TransitionKind.Close, incidentId,
                        context.CommonLabels, context.CommonAnnotations, context.ExternalUrl,
                    }, tx);
                break;
        }

        WriteAlerts(connection, tx, row.GroupId, incidentId, transition, byKey, now);

        if (transition.ChangesIncident)
            WriteDeliveries(connection, tx, incidentId!, revision, notification.Receiver!, row.GroupId, transition, byKey, row.ReceivedAt, now);

        var outcome = transition.Kind switch
        {
            TransitionKind.Open => ProcessOutcome.Opened,
            TransitionKind.Change => ProcessOutcome.Changed,
            TransitionKind.Close => ProcessOutcome.Closed,
            TransitionKind.Repeat => ProcessOutcome.Repeat,
            _ => ProcessOutcome.None,
        };
        return (outcome, transition, incidentId);
    }

    private static void WriteAlerts(SqliteConnection connection, SqliteTransaction tx, string groupId, string? incidentId,
        IncidentTransition transition, Dictionary<AlertKey, AlertmanagerAlert> byKey, long now)
    {
        using var insert = connection.CreateCommand();
        insert.Transaction = tx;
        insert.CommandText =
            """
            INSERT OR IGNORE INTO alerts (group_id, fingerprint, starts_at, status, incident_id, ends_at, labels, annotations, generator_url, updated_at)
            VALUES ($g, $f, $s, $status, $incident, $ends, $labels, $annotations, $url, $now)
            """;
        var p = AddParameters(insert, "$g", "$f", "$s", "$status", "$incident", "$ends", "$labels", "$annotations", "$url", "$now");
        p["$g"].Value = groupId;
        p["$incident"].Value = (object?)incidentId ?? DBNull.Value;
        p["$now"].Value = now;

        void Insert(AlertKey key, string status)
        {
            var alert = byKey[key];
            p["$f"].Value = key.Fingerprint;
            p["$s"].Value = key.StartsAt;
            p["$status"].Value = status;
            p["$ends"].Value = alert.EndsAt is { } e && e.Year > 1 ? e.ToString("O") : DBNull.Value;
            p["$labels"].Value = JsonSerializer.Serialize(alert.Labels ?? [], WebhookJsonContext.Default.DictionaryStringString);
            p["$annotations"].Value = JsonSerializer.Serialize(alert.Annotations ?? [], WebhookJsonContext.Default.DictionaryStringString);
            p["$url"].Value = alert.GeneratorUrl ?? "";
            insert.ExecuteNonQuery();
        }

        foreach (var key in transition.Joined) Insert(key, "firing");
        foreach (var key in transition.RememberedResolved) Insert(key, "resolved");

        if (transition.Resolved.Count == 0) return;
        using var update = connection.CreateCommand();
        update.Transaction = tx;
        update.CommandText =
            "UPDATE alerts SET status = 'resolved', ends_at = $ends, annotations = $annotations, updated_at = $now WHERE group_id = $g AND fingerprint = $f AND starts_at = $s";
        var u = AddParameters(update, "$g", "$f", "$s", "$ends", "$annotations", "$now");
        u["$g"].Value = groupId;
        u["$now"].Value = now;
        foreach (var key in transition.Resolved)
        {
            var alert = byKey[key];
            u["$f"].Value = key.Fingerprint;
            u["$s"].Value = key.StartsAt;
            u["$ends"].Value = alert.EndsAt is { } e && e.Year > 1 ? e.ToString("O") : DBNull.Value;
            u["$annotations"].Value = JsonSerializer.Serialize(alert.Annotations ?? [], WebhookJsonContext.Default.DictionaryStringString);
            update.ExecuteNonQuery();
        }
    }

    private void WriteDeliveries(SqliteConnection connection, SqliteTransaction tx, string incidentId, int revision, string receiver,
        string groupId, IncidentTransition transition, Dictionary<AlertKey, AlertmanagerAlert> byKey, long acceptedAt, long now)
    {
        // Targets that already had deliveries for this incident hear about every change; a target that
        // a joining alert routes to for the first time starts there (e.g. a first Slack message).
        var existing = connection.Query<(string Channel, string Target)>(
                "SELECT DISTINCT channel AS Channel, target AS Target FROM deliveries WHERE incident_id = @incidentId",
                new { incidentId }, tx)
            .Select(t => new DeliveryTarget(t.Channel, t.Target)).ToHashSet();
        var joinedByTarget = new Dictionary<DeliveryTarget, List<AlertmanagerAlert>>();
        foreach (var key in transition.Joined)
        {
            var alert = byKey[key];
            foreach (var target in router.TargetsFor(receiver, alert.Labels ?? []).Distinct())
            {
                if (!joinedByTarget.TryGetValue(target, out var list)) joinedByTarget[target] = list = [];
                list.Add(alert);
            }
        }

        var change = new IncidentChange(incidentId, revision, transition.Kind, receiver, groupId, ChangeSummary.Of(transition, byKey));
        const string sql =
            """
            INSERT OR IGNORE INTO deliveries (incident_id, channel, target, kind, revision, subject, payload, status, next_attempt_at, accepted_at, created_at)
            VALUES (@incidentId, @Channel, @Target, @Kind, @revision, @Subject, @Payload, 'pending', @now, @acceptedAt, @now)
            """;
        var planned = 0;
        var implicitTargets = notifiers.Values.Where(n => n.EveryIncident).Select(n => new DeliveryTarget(n.Channel, n.Channel));
        foreach (var target in existing.Union(joinedByTarget.Keys).Union(implicitTargets))
        {
            if (!notifiers.TryGetValue(target.Channel, out var notifier)) continue;
            var joinedHere = joinedByTarget.TryGetValue(target, out var list) ? list : [];
            foreach (var delivery in notifier.Plan(change, target, !existing.Contains(target), joinedHere))
            {
                connection.Execute(sql, new
                {
                    incidentId, target.Channel, target.Target, delivery.Kind, revision, delivery.Subject, delivery.Payload, now, acceptedAt,
                }, tx);
                if (!notifier.EveryIncident) planned++;
            }
        }
        if (planned == 0 && transition.Kind == TransitionKind.Open)
            LogUnrouted(incidentId);
    }

    private static Dictionary<string, SqliteParameter> AddParameters(SqliteCommand command, params string[] names) =>
        names.ToDictionary(n => n, n => command.Parameters.Add(n, SqliteType.Text));

    private static string IncidentIdFor(string groupId, string notificationId) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{groupId}\n{notificationId}")))[..24];

    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Incident {IncidentId} {Outcome}: {Joined} alert(s) joined, {Resolved} resolved")]
    private partial void LogTransition(string incidentId, ProcessOutcome outcome, int joined, int resolved);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "Incident {IncidentId} opened but no route has a target for it: nothing will be delivered")]
    private partial void LogUnrouted(string incidentId);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Information, Message = "Notification {NotificationId} applied ({Outcome}) before {LaterId}: a group's notifications are applied in journal order")]
    private partial void LogAppliedEarlier(string notificationId, string laterId, ProcessOutcome outcome);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Warning, Message = "Notification {NotificationId} could not be applied (attempt {Attempts} of {MaxAttempts}); it is retried")]
    private partial void LogApplyFailed(Exception ex, string notificationId, long attempts, int maxAttempts);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Error, Message = "Notification {NotificationId} QUARANTINED after {Attempts} failed attempts: it is kept in the journal (outcome Quarantined) and will not be retried; nothing of it was delivered")]
    private partial void LogQuarantined(Exception ex, string notificationId, long attempts);

    private sealed record JournalHead(long Seq, string Id, string GroupId, long? ProcessedAt);
    private sealed record JournalRow(long Seq, string GroupId, long ReceivedAt, byte[] Body, long? ProcessedAt);
    private sealed record OpenIncident(string Id, long Revision);
    private sealed record StoredAlert(string Fingerprint, string StartsAt, string Status);

    private sealed record GroupSnapshot(OpenIncident? Open, Dictionary<AlertKey, AlertState> Known, List<AlertKey> OpenAlerts,
        Dictionary<AlertKey, AlertmanagerAlert> ByKey);
}
