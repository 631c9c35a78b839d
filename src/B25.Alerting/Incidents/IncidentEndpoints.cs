using System.Text.Json;
using B25.Alerting.Delivery;
using B25.Alerting.Storage;
using B25.Alerting.Webhooks;
using Dapper;
using Microsoft.AspNetCore.Http.HttpResults;

namespace B25.Alerting.Incidents;

/// <summary>Operator API: incidents with their alerts and deliveries.</summary>
internal static class IncidentEndpoints
{
    public static IEndpointRouteBuilder MapIncidents(this IEndpointRouteBuilder routes)
    {
        var api = routes.MapGroup("/api/incidents");
        api.MapGet("/", ListAsync).WithName("ListIncidents");
        api.MapGet("/{id}", GetAsync).WithName("GetIncident");
        return routes;
    }

    public sealed record IncidentDto(string Id, string Receiver, string GroupKey, string State, long Revision, DateTimeOffset OpenedAt,
        DateTimeOffset? ClosedAt, IReadOnlyDictionary<string, string> GroupLabels, IReadOnlyDictionary<string, string> CommonLabels,
        int FiringCount, int ResolvedCount, IReadOnlyList<AlertDto> Alerts, IReadOnlyList<DeliveryDto> Deliveries);

    public sealed record AlertDto(string Fingerprint, string StartsAt, string Status, string? EndsAt,
        IReadOnlyDictionary<string, string> Labels, IReadOnlyDictionary<string, string> Annotations, string GeneratorUrl);

    public sealed record DeliveryDto(long Id, string Channel, string Target, string Kind, long Revision, string Status, long Attempts,
        string? LastError, DateTimeOffset CreatedAt, DateTimeOffset? CompletedAt);

    internal static async Task<Results<Ok<List<IncidentDto>>, ProblemHttpResult>> ListAsync(
        Database database, string? state, int? limit, CancellationToken cancellationToken)
    {
        state ??= "open";
        if (state is not ("open" or "closed"))
            return TypedResults.Problem(detail: $"state must be 'open' or 'closed', not '{state}'.", statusCode: 400, title: "Invalid query");
        if (limit is < 1 or > 1000)
            return TypedResults.Problem(detail: "limit must be between 1 and 1000.", statusCode: 400, title: "Invalid query");

        await using var connection = await database.OpenAsync(cancellationToken);
        var ids = await connection.QueryAsync<string>(
            "SELECT id FROM incidents WHERE state = @state ORDER BY opened_at DESC LIMIT @limit", new { state, limit = limit ?? 100 });
        var result = new List<IncidentDto>();
        foreach (var id in ids)
            result.Add((await LoadAsync(connection, id))!);
        return TypedResults.Ok(result);
    }

    internal static async Task<Results<Ok<IncidentDto>, NotFound>> GetAsync(Database database, string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var incident = await LoadAsync(connection, id);
        return incident is null ? TypedResults.NotFound() : TypedResults.Ok(incident);
    }

    private static async Task<IncidentDto?> LoadAsync(Microsoft.Data.Sqlite.SqliteConnection connection, string id)
    {
        var view = await DeliveryDispatcher.LoadIncidentAsync(connection, id, maxAlerts: 1000);
        if (view is null) return null;
        var deliveries = (await connection.QueryAsync<DeliveryRow>(
                """
                SELECT id AS Id, channel AS Channel, target AS Target, kind AS Kind, revision AS Revision, status AS Status,
                       attempts AS Attempts, last_error AS LastError, created_at AS CreatedAt, completed_at AS CompletedAt
                FROM deliveries WHERE incident_id = @id ORDER BY id
                """, new { id }))
            .Select(d => new DeliveryDto(d.Id, d.Channel, d.Target, d.Kind, d.Revision, d.Status, d.Attempts, d.LastError,
                DateTimeOffset.FromUnixTimeMilliseconds(d.CreatedAt),
                d.CompletedAt is { } c ? DateTimeOffset.FromUnixTimeMilliseconds(c) : null))
            .ToList();
        return new IncidentDto(view.Id, view.Receiver, view.GroupKey, view.State, view.Revision, view.OpenedAt, view.ClosedAt,
            view.GroupLabels, view.CommonLabels, view.FiringCount, view.ResolvedCount,
            view.Alerts.Select(a => new AlertDto(a.Fingerprint, a.StartsAt, a.Status, a.EndsAt, a.Labels, a.Annotations, a.GeneratorUrl)).ToList(),
            deliveries);
    }

    private sealed record DeliveryRow(long Id, string Channel, string Target, string Kind, long Revision, string Status, long Attempts,
        string? LastError, long CreatedAt, long? CompletedAt);
}
