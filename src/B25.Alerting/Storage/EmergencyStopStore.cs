using Dapper;

namespace B25.Alerting.Storage;

internal sealed record StopRequest(string CommandId, string IncidentId, string AlertName, string Fingerprint, string StartsAt, string Scope);

/// <summary>The stop's status after <see cref="IEmergencyStopStore.BeginAsync"/>; Recent: stops within the window before it.</summary>
internal sealed record StopStart(string Status, long Recent, bool New);

internal sealed record EmergencyStopRow(string CommandId, string IncidentId, string AlertName, string Fingerprint, string StartsAt, string Scope,
    string Status, long RequestedAt, long? AnsweredAt, string? AnsweredBy, string? Answer);

/// <summary>Emergency stops asked of the risk manager: one row per command, its answer, and the cap on how many per window.</summary>
internal interface IEmergencyStopStore
{
    /// <summary>
    /// Records the command once. A new one is dry-run, suppressed (the cap of requests within the window
    /// is reached) or requesting; counting and inserting are one step for the whole cluster, so two
    /// replicas can never both pass the cap. <paramref name="note"/> gives, for a new command's status and
    /// recent count, the Slack thread note to queue with it (or null). An existing command's status is returned as it is.
    /// </summary>
    Task<StopStart> BeginAsync(StopRequest request, long now, long windowStart, int cap, bool dryRun, Func<string, long, string?> note,
        CancellationToken cancellationToken);

    /// <summary>The command was published: requested, with its thread note.</summary>
    Task MarkRequestedAsync(string commandId, string incidentId, string note, long now, CancellationToken cancellationToken);

    /// <summary>
    /// Records the first answer (acknowledged or rejected) with its thread note. Returns the incident (null:
    /// unknown command) and whether this answer was the first.
    /// </summary>
    Task<(string? IncidentId, bool First)> RecordAnswerAsync(string commandId, string status, string by, string? detail, long answeredAt,
        Func<string, string> note, long now, CancellationToken cancellationToken);

    Task<IReadOnlyList<EmergencyStopRow>> ListAsync(int limit, CancellationToken cancellationToken);
}

internal sealed class EmergencyStopStore(IStorageProvider storage) : IEmergencyStopStore
{
    public async Task<StopStart> BeginAsync(StopRequest request, long now, long windowStart, int cap, bool dryRun, Func<string, long, string?> note,
        CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        var tx = write.Transaction;
        // One holder of the cap at a time, across replicas: count-then-insert is atomic.
        await storage.LockAsync(write, "emergency-stop-cap", cancellationToken);
        var existing = await connection.QuerySingleOrDefaultAsync<string>(
            "SELECT status FROM emergency_stops WHERE command_id = @CommandId", request, tx);
        if (existing is not null) return new StopStart(existing, 0, false);
        var recent = await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM emergency_stops WHERE status NOT IN ('dry-run', 'suppressed') AND requested_at > @windowStart",
            new { windowStart }, tx);
        var status = dryRun ? "dry-run" : recent >= cap ? "suppressed" : "requesting";
        await connection.ExecuteAsync(
            """
            INSERT INTO emergency_stops (command_id, incident_id, alert_name, fingerprint, starts_at, scope, status, requested_at)
            VALUES (@CommandId, @IncidentId, @AlertName, @Fingerprint, @StartsAt, @Scope, @status, @now)
            """,
            new { request.CommandId, request.IncidentId, request.AlertName, request.Fingerprint, request.StartsAt, request.Scope, status, now }, tx);
        if (note(status, recent) is { } text)
        {
            await DeliveryOutbox.AddSlackNoteAsync(connection, tx, request.IncidentId, $"stop:{request.CommandId}", text, now);
            await storage.WakeDeliveriesAsync(write, null, cancellationToken); // the incident's Slack targets: let the dispatchers look
        }
        await write.CommitAsync(cancellationToken);
        return new StopStart(status, recent, true);
    }

    public async Task MarkRequestedAsync(string commandId, string incidentId, string note, long now, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        var tx = write.Transaction;
        await connection.ExecuteAsync("UPDATE emergency_stops SET status = 'requested' WHERE command_id = @commandId AND status = 'requesting'",
            new { commandId }, tx);
        await DeliveryOutbox.AddSlackNoteAsync(connection, tx, incidentId, $"stop:{commandId}", note, now);
        await storage.WakeDeliveriesAsync(write, null, cancellationToken); // the incident's Slack targets: let the dispatchers look
        await write.CommitAsync(cancellationToken);
    }

    public async Task<(string? IncidentId, bool First)> RecordAnswerAsync(string commandId, string status, string by, string? detail, long answeredAt,
        Func<string, string> note, long now, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        var tx = write.Transaction;
        var incidentId = await connection.QuerySingleOrDefaultAsync<string>(
            "SELECT incident_id FROM emergency_stops WHERE command_id = @commandId", new { commandId }, tx);
        if (incidentId is null) return (null, false);
        // The first answer counts; a repeated or later answer changes nothing.
        var changed = await connection.ExecuteAsync(
            """
            UPDATE emergency_stops SET status = @status, answered_at = @answeredAt, answered_by = @by, answer = @detail
            WHERE command_id = @commandId AND status IN ('requesting', 'requested')
            """, new { status, answeredAt, by, detail, commandId }, tx);
        if (changed == 0) return (incidentId, false);
        await DeliveryOutbox.AddSlackNoteAsync(connection, tx, incidentId, $"answer:{commandId}", note(incidentId), now);
        await storage.WakeDeliveriesAsync(write, null, cancellationToken); // the incident's Slack targets: let the dispatchers look
        await write.CommitAsync(cancellationToken);
        return (incidentId, true);
    }

    public async Task<IReadOnlyList<EmergencyStopRow>> ListAsync(int limit, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<EmergencyStopRow>(
            """
            SELECT command_id AS CommandId, incident_id AS IncidentId, alert_name AS AlertName, fingerprint AS Fingerprint,
                   starts_at AS StartsAt, scope AS Scope, status AS Status, requested_at AS RequestedAt, answered_at AS AnsweredAt,
                   answered_by AS AnsweredBy, answer AS Answer
            FROM emergency_stops ORDER BY requested_at DESC LIMIT @limit
            """, new { limit })).ToList();
    }
}
