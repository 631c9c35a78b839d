using System.Data.Common;
using Dapper;

namespace B25.Alerting.Storage;

/// <param name="FiredAt">When the alert fired as the cap counts it (unix ms): see <see cref="IEmergencyStopStore.BeginAsync"/>.</param>
internal sealed record StopRequest(string CommandId, string IncidentId, string AlertName, string Fingerprint, string StartsAt, string Scope,
    long FiredAt);

/// <summary>
/// The stop's status after <see cref="IEmergencyStopStore.BeginAsync"/>; Recent: the most stops that count against the cap
/// whose alerts fired within one window together with this one (not counting it).
/// </summary>
internal sealed record StopStart(string Status, long Recent, bool New);

internal sealed record EmergencyStopRow(string CommandId, string IncidentId, string AlertName, string Fingerprint, string StartsAt, string Scope,
    string Status, long RequestedAt, long? AnsweredAt, string? AnsweredBy, string? Answer, long? FiredAt);

/// <summary>
/// Emergency stops asked of the risk manager: one row per command, its answer, and the cap on how many per window.
/// Every change of a stop edits the incident's Slack message (which shows its stops) in the same transaction; only
/// what needs people now (the cap reached, a rejection, no answer) also queues a thread note, which notifies.
/// </summary>
internal interface IEmergencyStopStore
{
    /// <summary>
    /// Records the command once. A new one is dry-run, suppressed or requesting. Suppressed: at least
    /// <paramref name="cap"/> stops that count (requested, answered or still requesting) have alerts that fired within one
    /// <paramref name="window"/> together with this one's <see cref="StopRequest.FiredAt"/>, whatever their order of
    /// arrival, so a backlog of stops that fired over a long span passes and a burst that fired together does not.
    /// Counting and inserting are one step for the whole cluster, so two replicas can never both pass the cap.
    /// <paramref name="note"/> gives, for a new command's status and recent count, the Slack thread note to queue with
    /// it (or null: the edit of the incident's message shows it). An existing command's status is returned as it is.
    /// </summary>
    Task<StopStart> BeginAsync(StopRequest request, long now, long window, int cap, bool dryRun, Func<string, long, string?> note,
        CancellationToken cancellationToken);

    /// <summary>The command was published: requested. The incident's Slack message is edited to say so; no thread note.</summary>
    Task MarkRequestedAsync(string commandId, string incidentId, long now, CancellationToken cancellationToken);

    /// <summary>
    /// Records the first answer (acknowledged or rejected) and edits the incident's Slack message; <paramref name="note"/>
    /// gives the thread note to queue as well (null: none). Returns the incident (null: unknown command) and whether this
    /// answer was the first.
    /// </summary>
    Task<(string? IncidentId, bool First)> RecordAnswerAsync(string commandId, string status, string by, string? detail, long answeredAt,
        Func<string, string?> note, long now, CancellationToken cancellationToken);

    Task<IReadOnlyList<EmergencyStopRow>> ListAsync(int limit, CancellationToken cancellationToken);
}

internal sealed class EmergencyStopStore(IStorageProvider storage) : IEmergencyStopStore
{
    public async Task<StopStart> BeginAsync(StopRequest request, long now, long window, int cap, bool dryRun, Func<string, long, string?> note,
        CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        var tx = write.Transaction;
        // One holder of the cap at a time, across replicas: count-then-insert is atomic.
        await storage.LockAsync(write, "emergency-stop-cap", cancellationToken);
        var existing = await write.Connection.QuerySingleOrDefaultAsync<string>(
            "SELECT status FROM emergency_stops WHERE command_id = @CommandId", request, tx);
        if (existing is not null) return new StopStart(existing, 0, false);
        // Only stops whose alerts fired less than a window before or after this one can share a window with it; the cap
        // bounds how many of those count, so this is a handful of rows.
        var near = (await write.Connection.QueryAsync<long>(
            """
            SELECT fired_at FROM emergency_stops
            WHERE fired_at > @from AND fired_at < @to AND status NOT IN ('dry-run', 'suppressed')
            """, new { from = request.FiredAt - window, to = request.FiredAt + window }, tx)).ToList();
        var recent = StopCap.Busiest(near, request.FiredAt, window);
        var status = dryRun ? "dry-run" : recent >= cap ? "suppressed" : "requesting";
        await write.Connection.ExecuteAsync(
            """
            INSERT INTO emergency_stops (command_id, incident_id, alert_name, fingerprint, starts_at, scope, status, requested_at, fired_at)
            VALUES (@CommandId, @IncidentId, @AlertName, @Fingerprint, @StartsAt, @Scope, @status, @now, @FiredAt)
            """,
            new { request.CommandId, request.IncidentId, request.AlertName, request.Fingerprint, request.StartsAt, request.Scope, status, now,
                request.FiredAt }, tx);
        if (status != "requesting")
        {
            // Requesting shows once it is requested (or once a publish that keeps failing is paged as unanswered).
            var queued = await AddSlackEditAsync(write.Connection, tx, request.IncidentId, $"stop:{request.CommandId}", now);
            if (note(status, recent) is { } text)
                queued += await DeliveryOutbox.AddSlackNoteAsync(write.Connection, tx, request.IncidentId, $"stop:{request.CommandId}", text, now);
            if (queued > 0) await storage.WakeDeliveriesAsync(write, null, cancellationToken); // the incident's Slack targets: let the dispatchers look
        }
        await write.CommitAsync(cancellationToken);
        return new StopStart(status, recent, true);
    }

    public async Task MarkRequestedAsync(string commandId, string incidentId, long now, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        var tx = write.Transaction;
        var changed = await write.Connection.ExecuteAsync(
            "UPDATE emergency_stops SET status = 'requested' WHERE command_id = @commandId AND status = 'requesting'", new { commandId }, tx);
        // A routine request costs the channel no message: the incident's own message says it (an edit, merged with a
        // post or edit still pending).
        if (changed > 0 && await AddSlackEditAsync(write.Connection, tx, incidentId, $"stop:{commandId}", now) > 0)
            await storage.WakeDeliveriesAsync(write, null, cancellationToken); // the incident's Slack targets: let the dispatchers look
        await write.CommitAsync(cancellationToken);
    }

    public async Task<(string? IncidentId, bool First)> RecordAnswerAsync(string commandId, string status, string by, string? detail, long answeredAt,
        Func<string, string?> note, long now, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        var tx = write.Transaction;
        var incidentId = await write.Connection.QuerySingleOrDefaultAsync<string>(
            "SELECT incident_id FROM emergency_stops WHERE command_id = @commandId", new { commandId }, tx);
        if (incidentId is null) return (null, false);
        // The first answer counts; a repeated or later answer changes nothing.
        var changed = await write.Connection.ExecuteAsync(
            """
            UPDATE emergency_stops SET status = @status, answered_at = @answeredAt, answered_by = @by, answer = @detail
            WHERE command_id = @commandId AND status IN ('requesting', 'requested')
            """, new { status, answeredAt, by, detail, commandId }, tx);
        if (changed == 0) return (incidentId, false);
        var queued = await AddSlackEditAsync(write.Connection, tx, incidentId, $"answer:{commandId}", now);
        if (note(incidentId) is { } text)
            queued += await DeliveryOutbox.AddSlackNoteAsync(write.Connection, tx, incidentId, $"answer:{commandId}", text, now);
        if (queued > 0) await storage.WakeDeliveriesAsync(write, null, cancellationToken); // the incident's Slack targets: let the dispatchers look
        await write.CommitAsync(cancellationToken);
        return (incidentId, true);
    }

    /// <summary>
    /// Queues an edit of every Slack message of the incident (it renders the incident's emergency stops), in the caller's
    /// transaction; once per subject. A message not posted yet takes it in with its post, and pending edits of one
    /// message are one call, so a stop adds at most an edit, never a message.
    /// </summary>
    internal static Task<int> AddSlackEditAsync(DbConnection connection, DbTransaction tx, string incidentId, string subject, long now) =>
        connection.ExecuteAsync(
            """
            INSERT INTO deliveries (incident_id, channel, target, kind, revision, subject, payload, status, next_attempt_at, accepted_at, created_at)
            SELECT DISTINCT d.incident_id, 'slack', d.target, 'update', i.revision, @subject, '{}', 'pending', @now, @now, @now
            FROM deliveries d JOIN incidents i ON i.id = d.incident_id
            WHERE d.incident_id = @incidentId AND d.channel = 'slack' AND d.kind = 'post'
            ON CONFLICT DO NOTHING
            """, new { incidentId, subject, now }, tx);

    public async Task<IReadOnlyList<EmergencyStopRow>> ListAsync(int limit, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<EmergencyStopRow>(
            """
            SELECT command_id AS CommandId, incident_id AS IncidentId, alert_name AS AlertName, fingerprint AS Fingerprint,
                   starts_at AS StartsAt, scope AS Scope, status AS Status, requested_at AS RequestedAt, answered_at AS AnsweredAt,
                   answered_by AS AnsweredBy, answer AS Answer, fired_at AS FiredAt
            FROM emergency_stops ORDER BY requested_at DESC LIMIT @limit
            """, new { limit })).ToList();
    }
}

/// <summary>The cap counted by firing time: how many stops share a window with one more, in any order of arrival.</summary>
internal static class StopCap
{
    /// <summary>
    /// The most of <paramref name="others"/> (firing times, unix ms) that lie in one window [a, a + window) that also holds
    /// <paramref name="firedAt"/>. The cap holds for every window, not only the one ending now, so a stop that arrives
    /// after later-fired ones still counts them. A window can always slide right until its start is on a stop (or on
    /// this one) without losing any, so those starts are the only ones to try.
    /// </summary>
    public static long Busiest(IReadOnlyList<long> others, long firedAt, long window)
    {
        long busiest = 0;
        foreach (var start in others.Where(s => s <= firedAt && s > firedAt - window).Append(firedAt))
            busiest = Math.Max(busiest, others.Count(s => s >= start && s < start + window));
        return busiest;
    }
}
