using System.Text.Json;
using B25.Alerting.Delivery;
using B25.Alerting.Webhooks;
using Dapper;

namespace B25.Alerting.Storage;

internal sealed record DeliveryRow(long Id, string Channel, string Target, string Kind, long Revision, string Status, long Attempts,
    string? LastError, long CreatedAt, long? CompletedAt);

/// <summary>Incidents as the notifiers render them and the operator API shows them.</summary>
internal interface IIncidentReadModel
{
    /// <summary>The incident now, with up to <paramref name="maxAlerts"/> alerts (firing first); null when unknown.</summary>
    Task<IncidentView?> LoadAsync(string incidentId, int maxAlerts, CancellationToken cancellationToken);

    /// <summary>Incident ids in a state (open or closed), newest first.</summary>
    Task<IReadOnlyList<string>> ListAsync(string state, int limit, CancellationToken cancellationToken);

    Task<IReadOnlyList<DeliveryRow>> DeliveriesAsync(string incidentId, CancellationToken cancellationToken);

    /// <summary>Whether a later incident of the same Alertmanager group already holds a message at the target.</summary>
    Task<bool> SupersededAtAsync(IncidentView incident, string channel, string target, CancellationToken cancellationToken);
}

internal sealed class IncidentReadModel(IStorageProvider storage) : IIncidentReadModel
{
    public async Task<IncidentView?> LoadAsync(string incidentId, int maxAlerts, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        // The four reads in one command: one round trip on PostgreSQL (a batch), where each delivery loads its incident.
        await using var grid = await connection.QueryMultipleAsync(
            $"""
            SELECT id AS Id, receiver AS Receiver, group_key AS GroupKey, state AS State, revision AS Revision, opened_at AS OpenedAt,
                   closed_at AS ClosedAt, group_labels AS GroupLabels, common_labels AS CommonLabels,
                   common_annotations AS CommonAnnotations, external_url AS ExternalUrl, truncated_alerts AS TruncatedAlerts,
                   acknowledged_by AS AcknowledgedBy, acknowledged_at AS AcknowledgedAt, acknowledged_via AS AcknowledgedVia,
                   silence_id AS SilenceId, silenced_until AS SilencedUntil, silenced_by AS SilencedBy
            FROM incidents WHERE id = @incidentId;
            SELECT COALESCE(SUM(CASE WHEN status = 'firing' THEN 1 ELSE 0 END), 0) AS Firing,
                   COALESCE(SUM(CASE WHEN status = 'resolved' THEN 1 ELSE 0 END), 0) AS Resolved
            FROM alerts WHERE incident_id = @incidentId;
            SELECT fingerprint AS Fingerprint, starts_at AS StartsAt, status AS Status, ends_at AS EndsAt, labels AS Labels,
                   annotations AS Annotations, generator_url AS GeneratorUrl
            FROM alerts WHERE incident_id = @incidentId
            ORDER BY CASE WHEN status = 'resolved' THEN 1 ELSE 0 END, starts_at, fingerprint LIMIT @maxAlerts;
            SELECT command_id AS CommandId, alert_name AS AlertName, status AS Status, scope AS Scope, requested_at AS RequestedAt,
                   answered_at AS AnsweredAt, answered_by AS AnsweredBy, answer AS Answer, unanswered_paged_at AS UnansweredPagedAt
            FROM emergency_stops WHERE incident_id = @incidentId ORDER BY requested_at DESC, command_id DESC LIMIT {MaxStopsShown}
            """, new { incidentId, maxAlerts });
        var row = await grid.ReadSingleOrDefaultAsync<IncidentRow>();
        if (row is null) return null;
        var counts = await grid.ReadSingleAsync<(long Firing, long Resolved)>();
        var alerts = (await grid.ReadAsync<AlertRow>())
            .Select(a => new AlertView(a.Fingerprint, a.StartsAt, a.Status, a.EndsAt, Labels(a.Labels), Labels(a.Annotations), a.GeneratorUrl))
            .ToList();
        // The incident's newest emergency stops, shown in the newest-last order they happened.
        var stops = (await grid.ReadAsync<StopRow>())
            .Select(s => new EmergencyStopView(s.CommandId, s.AlertName, s.Status, Labels(s.Scope), DateTimeOffset.FromUnixTimeMilliseconds(s.RequestedAt),
                Ms(s.AnsweredAt), s.AnsweredBy, s.Answer, s.UnansweredPagedAt is not null))
            .Reverse()
            .ToList();
        return new IncidentView(row.Id, row.Receiver, row.GroupKey, row.State, row.Revision,
            DateTimeOffset.FromUnixTimeMilliseconds(row.OpenedAt),
            row.ClosedAt is { } closed ? DateTimeOffset.FromUnixTimeMilliseconds(closed) : null,
            Labels(row.GroupLabels), Labels(row.CommonLabels), Labels(row.CommonAnnotations), row.ExternalUrl,
            (int)counts.Firing, (int)counts.Resolved, alerts, row.TruncatedAlerts,
            Handling: new IncidentHandling(row.AcknowledgedBy, Ms(row.AcknowledgedAt), row.AcknowledgedVia, row.SilenceId, Ms(row.SilencedUntil),
                row.SilencedBy),
            EmergencyStops: stops);
    }

    /// <summary>Emergency stops loaded with an incident: more than a message can show, so the message can say how many more.</summary>
    public const int MaxStopsShown = 50;

    public async Task<IReadOnlyList<string>> ListAsync(string state, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<string>(
            "SELECT id FROM incidents WHERE state = @state ORDER BY opened_at DESC LIMIT @limit", new { state, limit })).ToList();
    }

    public async Task<IReadOnlyList<DeliveryRow>> DeliveriesAsync(string incidentId, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<DeliveryRow>(
            """
            SELECT id AS Id, channel AS Channel, target AS Target, kind AS Kind, revision AS Revision, status AS Status,
                   attempts AS Attempts, last_error AS LastError, created_at AS CreatedAt, completed_at AS CompletedAt
            FROM deliveries WHERE incident_id = @incidentId ORDER BY id
            """, new { incidentId })).ToList();
    }

    public async Task<bool> SupersededAtAsync(IncidentView incident, string channel, string target, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(
            """
            SELECT COUNT(*) FROM delivery_messages m JOIN incidents i ON i.id = m.incident_id
            WHERE m.channel = @channel AND m.target = @target AND i.receiver = @Receiver AND i.group_key = @GroupKey
              AND i.id <> @Id AND i.opened_at > @openedAt
            """,
            new { channel, target, incident.Receiver, incident.GroupKey, incident.Id, openedAt = incident.OpenedAt.ToUnixTimeMilliseconds() }) > 0;
    }

    private static DateTimeOffset? Ms(long? ms) => ms is { } v ? DateTimeOffset.FromUnixTimeMilliseconds(v) : null;

    private static Dictionary<string, string> Labels(string json) =>
        JsonSerializer.Deserialize(json, WebhookJsonContext.Default.DictionaryStringString) ?? [];

    private sealed record IncidentRow(string Id, string Receiver, string GroupKey, string State, long Revision, long OpenedAt, long? ClosedAt,
        string GroupLabels, string CommonLabels, string CommonAnnotations, string ExternalUrl, long TruncatedAlerts, string? AcknowledgedBy,
        long? AcknowledgedAt, string? AcknowledgedVia, string? SilenceId, long? SilencedUntil, string? SilencedBy);

    private sealed record StopRow(string CommandId, string AlertName, string Status, string Scope, long RequestedAt, long? AnsweredAt,
        string? AnsweredBy, string? Answer, long? UnansweredPagedAt);

    private sealed record AlertRow(string Fingerprint, string StartsAt, string Status, string? EndsAt, string Labels, string Annotations, string GeneratorUrl);
}
