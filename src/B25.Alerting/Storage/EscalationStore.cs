using Dapper;

namespace B25.Alerting.Storage;

/// <summary>An open incident nobody acknowledged, with the reminders already queued for it.</summary>
internal sealed record UnacknowledgedIncident(string Id, string Receiver, long OpenedAt, long Escalations, long Revision);

/// <summary>
/// What the escalation monitor reads and writes: unacknowledged open incidents and their reminders, emergency stops the
/// risk manager has not answered. Each reminder or page is queued once (a conditional update in the same transaction as
/// its thread note), however many replicas look at the same moment.
/// </summary>
internal interface IEscalationStore
{
    /// <summary>
    /// Open, unacknowledged incidents that opened before <paramref name="openedBefore"/> and have had fewer than
    /// <paramref name="maxEscalations"/> reminders: at most <paramref name="limit"/> of them, oldest first, after
    /// <paramref name="after"/> (the last one of the page before; null for the first page).
    /// </summary>
    Task<IReadOnlyList<UnacknowledgedIncident>> UnacknowledgedAsync(long openedBefore, int maxEscalations, (long OpenedAt, string Id)? after, int limit,
        CancellationToken cancellationToken);

    /// <summary>Queues reminder number <paramref name="count"/> + 1 as a Slack thread note, if the incident is still open, unacknowledged and at <paramref name="count"/>.</summary>
    Task<bool> EscalateAsync(string incidentId, long count, string note, long now, CancellationToken cancellationToken);

    /// <summary>Emergency stops requested before the cutoff that have no answer and whose humans were not paged yet.</summary>
    Task<IReadOnlyList<(string CommandId, string IncidentId)>> UnansweredStopsAsync(long requestedBefore, CancellationToken cancellationToken);

    /// <summary>Pages the incident's Slack threads about the unanswered stop, once, and edits its messages to say so.</summary>
    Task<bool> PageUnansweredAsync(string commandId, string incidentId, string note, long now, CancellationToken cancellationToken);
}

internal sealed class EscalationStore(IStorageProvider storage) : IEscalationStore
{
    public async Task<IReadOnlyList<UnacknowledgedIncident>> UnacknowledgedAsync(long openedBefore, int maxEscalations, (long OpenedAt, string Id)? after,
        int limit, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<UnacknowledgedIncident>(
            """
            SELECT id AS Id, receiver AS Receiver, opened_at AS OpenedAt, escalations AS Escalations, revision AS Revision FROM incidents
            WHERE state = 'open' AND acknowledged_at IS NULL AND opened_at <= @openedBefore AND escalations < @maxEscalations
              AND (opened_at > @afterOpenedAt OR (opened_at = @afterOpenedAt AND id > @afterId))
            ORDER BY opened_at, id LIMIT @limit
            """, new { openedBefore, maxEscalations, afterOpenedAt = after?.OpenedAt ?? long.MinValue, afterId = after?.Id ?? "", limit })).ToList();
    }

    public async Task<bool> EscalateAsync(string incidentId, long count, string note, long now, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        var changed = await write.Connection.ExecuteAsync(
            """
            UPDATE incidents SET escalations = @next
            WHERE id = @incidentId AND escalations = @count AND state = 'open' AND acknowledged_at IS NULL
            """, new { incidentId, count, next = count + 1 }, write.Transaction);
        if (changed == 0) return false;
        await DeliveryOutbox.AddSlackNoteAsync(write.Connection, write.Transaction, incidentId, $"escalation:{count + 1}", note, now);
        await storage.WakeDeliveriesAsync(write, null, cancellationToken);
        await write.CommitAsync(cancellationToken);
        return true;
    }

    public async Task<IReadOnlyList<(string CommandId, string IncidentId)>> UnansweredStopsAsync(long requestedBefore, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<(string, string)>(
            """
            SELECT command_id, incident_id FROM emergency_stops
            WHERE status IN ('requesting', 'requested') AND requested_at <= @requestedBefore AND unanswered_paged_at IS NULL
            ORDER BY requested_at LIMIT 100
            """, new { requestedBefore })).ToList();
    }

    public async Task<bool> PageUnansweredAsync(string commandId, string incidentId, string note, long now, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        var changed = await write.Connection.ExecuteAsync(
            """
            UPDATE emergency_stops SET unanswered_paged_at = @now
            WHERE command_id = @commandId AND unanswered_paged_at IS NULL AND status IN ('requesting', 'requested')
            """, new { commandId, now }, write.Transaction);
        if (changed == 0) return false;
        await DeliveryOutbox.AddSlackNoteAsync(write.Connection, write.Transaction, incidentId, $"stop-unanswered:{commandId}", note, now);
        // The message's line for the stop says it too, so it does not go on reading "waiting for its answer".
        await EmergencyStopStore.AddSlackEditAsync(write.Connection, write.Transaction, incidentId, $"stop-unanswered:{commandId}", now);
        await storage.WakeDeliveriesAsync(write, null, cancellationToken);
        await write.CommitAsync(cancellationToken);
        return true;
    }
}
