using System.Data.Common;
using Dapper;

namespace B25.Alerting.Storage;

/// <summary>One human action as audited: who asked what, from where, when, and what came of it.</summary>
internal sealed record ActionRow(long Id, string IncidentId, string ActionKey, string Action, string Actor, string Source, long RequestedAt,
    string Result, string? Detail, long? CompletedAt);

/// <summary>A human action to record; <see cref="Key"/> makes the same request twice (a retry) one action.</summary>
internal sealed record NewAction(string IncidentId, string Key, string Action, string Actor, string Source, long Now);

/// <summary>The incident as an action finds it, read inside the action's write transaction under the group's lock.</summary>
internal sealed record ActionSubject(string IncidentId, string GroupId, string State, long Revision, string? AcknowledgedBy, long? AcknowledgedAt,
    string? AcknowledgedVia, string? SilenceId, long? SilencedUntil, string? SilencedBy, IReadOnlyDictionary<string, string> GroupLabels)
{
    public bool Closed => State == "closed";

    public bool Acknowledged => AcknowledgedAt is not null;

    public bool SilencedAt(long now) => SilenceId is not null && SilencedUntil > now;
}

internal enum HandlingChangeKind { None, Acknowledge, Silence, Unsilence }

/// <summary>
/// What an action does: its result (and detail) for the audit, the change to the incident, and the deliveries it
/// causes, queued in the same transaction (the outbox): the Slack message edited, a thread note, PagerDuty
/// acknowledge on the incident's dedup_key, IncidentAcknowledged for the risk manager.
/// </summary>
internal sealed record ActionDecision(
    string Result,
    string? Detail = null,
    HandlingChangeKind Change = HandlingChangeKind.None,
    string? SilenceId = null,
    long? SilencedUntil = null,
    string? ThreadNote = null,
    bool EditSlack = false,
    bool PagerDutyAcknowledge = false,
    string? AcknowledgedPayload = null);

/// <summary>
/// Human actions on incidents (acknowledge, silence, unsilence): each one recorded and applied in one write
/// transaction under the alert group's lock, so it is ordered with the group's notifications across every
/// process sharing the store, durable before anyone is answered, and the same request twice is one action.
/// </summary>
internal interface IIncidentActionStore
{
    /// <summary>The incident's alert group, or null for an unknown incident.</summary>
    Task<string?> GroupOfAsync(string incidentId, CancellationToken cancellationToken);

    /// <summary>The latest incident of the alert group (the open one when there is one), or null.</summary>
    Task<string?> LatestOfGroupAsync(string groupId, CancellationToken cancellationToken);

    /// <summary>
    /// Records the action and applies what <paramref name="decide"/> makes of it, in one transaction. A key already
    /// recorded returns that action as it is (Duplicate true) and decides nothing. Null: no such incident.
    /// </summary>
    Task<(ActionRow Row, bool Duplicate)?> RecordAsync(NewAction action, Func<ActionSubject, ActionDecision> decide, CancellationToken cancellationToken);

    /// <summary>Finishes a pending action (one that waited for a call elsewhere, e.g. Alertmanager) the same way; an action no longer pending is returned as it is.</summary>
    Task<ActionRow?> CompleteAsync(long actionId, Func<ActionSubject, ActionDecision> decide, long now, CancellationToken cancellationToken);

    /// <summary>The incident's actions, oldest first.</summary>
    Task<IReadOnlyList<ActionRow>> ListAsync(string incidentId, CancellationToken cancellationToken);

    /// <summary>Actions still pending that were requested before the cutoff (their process may have died mid-way).</summary>
    Task<IReadOnlyList<ActionRow>> PendingBeforeAsync(long requestedBefore, CancellationToken cancellationToken);
}

internal sealed class IncidentActionStore(IStorageProvider storage) : IIncidentActionStore
{
    private const string Columns =
        "id AS Id, incident_id AS IncidentId, action_key AS ActionKey, action AS Action, actor AS Actor, source AS Source, requested_at AS RequestedAt, " +
        "result AS Result, detail AS Detail, completed_at AS CompletedAt";

    public async Task<string?> GroupOfAsync(string incidentId, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<string>("SELECT group_id FROM incidents WHERE id = @incidentId", new { incidentId });
    }

    public async Task<string?> LatestOfGroupAsync(string groupId, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return await connection.QueryFirstOrDefaultAsync<string>(
            "SELECT id FROM incidents WHERE group_id = @groupId ORDER BY CASE WHEN state = 'open' THEN 0 ELSE 1 END, opened_at DESC LIMIT 1",
            new { groupId });
    }

    public async Task<(ActionRow Row, bool Duplicate)?> RecordAsync(NewAction action, Func<ActionSubject, ActionDecision> decide,
        CancellationToken cancellationToken)
    {
        // Durable as the journal is: the person who clicked is told it is done only once it survives a machine crash.
        await using var connection = await storage.OpenAsync(cancellationToken, durable: true);
        var groupId = await connection.QuerySingleOrDefaultAsync<string>("SELECT group_id FROM incidents WHERE id = @IncidentId", action);
        if (groupId is null) return null;
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        var tx = write.Transaction;
        await storage.LockAsync(write, "group:" + groupId, cancellationToken);
        var existing = await write.Connection.QuerySingleOrDefaultAsync<ActionRow>(
            $"SELECT {Columns} FROM incident_actions WHERE action_key = @Key", action, tx);
        if (existing is not null) return (existing, true);

        var subject = (await SubjectAsync(write.Connection, tx, action.IncidentId))!;
        var decision = decide(subject);
        var completed = decision.Result == ActionResults.Pending ? (long?)null : action.Now;
        var id = await write.Connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO incident_actions (incident_id, action_key, action, actor, source, requested_at, result, detail, completed_at)
            VALUES (@IncidentId, @Key, @Action, @Actor, @Source, @Now, @result, @detail, @completed)
            RETURNING id
            """,
            new { action.IncidentId, action.Key, action.Action, action.Actor, action.Source, action.Now, result = decision.Result, detail = decision.Detail, completed },
            tx);
        var row = new ActionRow(id, action.IncidentId, action.Key, action.Action, action.Actor, action.Source, action.Now, decision.Result, decision.Detail,
            completed);
        await ApplyAsync(write.Connection, write, row, decision, action.Now, cancellationToken);
        await write.CommitAsync(cancellationToken);
        return (row, false);
    }

    public async Task<ActionRow?> CompleteAsync(long actionId, Func<ActionSubject, ActionDecision> decide, long now, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken, durable: true);
        var incidentId = await connection.QuerySingleOrDefaultAsync<string>("SELECT incident_id FROM incident_actions WHERE id = @actionId", new { actionId });
        if (incidentId is null) return null;
        var groupId = await connection.QuerySingleAsync<string>("SELECT group_id FROM incidents WHERE id = @incidentId", new { incidentId });
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        var tx = write.Transaction;
        await storage.LockAsync(write, "group:" + groupId, cancellationToken);
        var row = await write.Connection.QuerySingleAsync<ActionRow>($"SELECT {Columns} FROM incident_actions WHERE id = @actionId", new { actionId }, tx);
        if (row.Result != ActionResults.Pending) return row;
        var decision = decide((await SubjectAsync(write.Connection, tx, incidentId))!);
        await write.Connection.ExecuteAsync(
            "UPDATE incident_actions SET result = @result, detail = @detail, completed_at = @now WHERE id = @actionId",
            new { result = decision.Result, detail = decision.Detail, now, actionId }, tx);
        row = row with { Result = decision.Result, Detail = decision.Detail, CompletedAt = now };
        await ApplyAsync(write.Connection, write, row, decision, now, cancellationToken);
        await write.CommitAsync(cancellationToken);
        return row;
    }

    public async Task<IReadOnlyList<ActionRow>> ListAsync(string incidentId, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<ActionRow>($"SELECT {Columns} FROM incident_actions WHERE incident_id = @incidentId ORDER BY id",
            new { incidentId })).ToList();
    }

    public async Task<IReadOnlyList<ActionRow>> PendingBeforeAsync(long requestedBefore, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<ActionRow>(
            $"SELECT {Columns} FROM incident_actions WHERE result = 'pending' AND requested_at < @requestedBefore ORDER BY id LIMIT 100",
            new { requestedBefore })).ToList();
    }

    private static async Task<ActionSubject?> SubjectAsync(DbConnection connection, DbTransaction tx, string incidentId)
    {
        var row = await connection.QuerySingleOrDefaultAsync<SubjectRow>(
            """
            SELECT id AS IncidentId, group_id AS GroupId, state AS State, revision AS Revision, acknowledged_by AS AcknowledgedBy,
                   acknowledged_at AS AcknowledgedAt, acknowledged_via AS AcknowledgedVia, silence_id AS SilenceId,
                   silenced_until AS SilencedUntil, silenced_by AS SilencedBy, group_labels AS GroupLabels
            FROM incidents WHERE id = @incidentId
            """, new { incidentId }, tx);
        if (row is null) return null;
        var labels = System.Text.Json.JsonSerializer.Deserialize(row.GroupLabels, Webhooks.WebhookJsonContext.Default.DictionaryStringString) ?? [];
        return new ActionSubject(row.IncidentId, row.GroupId, row.State, row.Revision, row.AcknowledgedBy, row.AcknowledgedAt, row.AcknowledgedVia,
            row.SilenceId, row.SilencedUntil, row.SilencedBy, labels);
    }

    private async Task ApplyAsync(DbConnection connection, StorageTransaction write, ActionRow row, ActionDecision decision, long now,
        CancellationToken cancellationToken)
    {
        var tx = write.Transaction;
        switch (decision.Change)
        {
            case HandlingChangeKind.Acknowledge:
                await connection.ExecuteAsync(
                    """
                    UPDATE incidents SET acknowledged_by = @Actor, acknowledged_at = @now, acknowledged_via = @Source, updated_at = @now
                    WHERE id = @IncidentId AND acknowledged_at IS NULL
                    """, new { row.Actor, now, row.Source, row.IncidentId }, tx);
                break;
            case HandlingChangeKind.Silence:
                await connection.ExecuteAsync(
                    "UPDATE incidents SET silence_id = @SilenceId, silenced_until = @SilencedUntil, silenced_by = @Actor, updated_at = @now WHERE id = @IncidentId",
                    new { decision.SilenceId, decision.SilencedUntil, row.Actor, now, row.IncidentId }, tx);
                break;
            case HandlingChangeKind.Unsilence:
                await connection.ExecuteAsync(
                    "UPDATE incidents SET silence_id = NULL, silenced_until = NULL, silenced_by = NULL, updated_at = @now WHERE id = @IncidentId",
                    new { now, row.IncidentId }, tx);
                break;
        }

        var subject = $"action:{row.Id}";
        var queued = 0;
        if (decision.EditSlack)
            queued += await QueueAsync(connection, tx, row.IncidentId, "slack", "update", subject, "{}", now, onlyPosted: true);
        if (decision.ThreadNote is { } note)
            queued += await DeliveryOutbox.AddSlackNoteAsync(connection, tx, row.IncidentId, subject, note, now);
        if (decision.PagerDutyAcknowledge)
            queued += await QueueAsync(connection, tx, row.IncidentId, "pagerduty", "acknowledge", subject, "{}", now);
        if (decision.AcknowledgedPayload is { } payload)
            queued += await QueueAsync(connection, tx, row.IncidentId, "incident-events", "acknowledged", subject, payload, now);
        if (queued > 0) await storage.WakeDeliveriesAsync(write, null, cancellationToken);
    }

    /// <summary>Queues a delivery of <paramref name="kind"/> at every target of the channel the incident already has deliveries at.</summary>
    private static Task<int> QueueAsync(DbConnection connection, DbTransaction tx, string incidentId, string channel, string kind, string subject,
        string payload, long now, bool onlyPosted = false) =>
        connection.ExecuteAsync(
            $"""
            INSERT INTO deliveries (incident_id, channel, target, kind, revision, subject, payload, status, next_attempt_at, accepted_at, created_at)
            SELECT DISTINCT d.incident_id, d.channel, d.target, @kind, i.revision, @subject, @payload, 'pending', @now, @now, @now
            FROM deliveries d JOIN incidents i ON i.id = d.incident_id
            WHERE d.incident_id = @incidentId AND d.channel = @channel {(onlyPosted ? "AND d.kind = 'post'" : "")}
            ON CONFLICT DO NOTHING
            """, new { incidentId, channel, kind, subject, payload, now }, tx);

    private sealed record SubjectRow(string IncidentId, string GroupId, string State, long Revision, string? AcknowledgedBy, long? AcknowledgedAt,
        string? AcknowledgedVia, string? SilenceId, long? SilencedUntil, string? SilencedBy, string GroupLabels);
}

/// <summary>The results an action can have, as recorded and shown.</summary>
internal static class ActionResults
{
    public const string Pending = "pending";
    public const string Acknowledged = "acknowledged";
    public const string AlreadyAcknowledged = "already-acknowledged";
    public const string AlreadyResolved = "already-resolved";
    public const string Silenced = "silenced";
    public const string AlreadySilenced = "already-silenced";
    public const string Unsilenced = "unsilenced";
    public const string NotSilenced = "not-silenced";
    public const string Failed = "failed";
    public const string ShownOnly = "shown";
}
