using B25.Alerting.Storage;
using Dapper;
using Microsoft.AspNetCore.Http.HttpResults;

namespace B25.Alerting.RiskManager;

internal static class RiskManagerEndpoints
{
    public static IEndpointRouteBuilder MapEmergencyStops(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/emergency-stops", ListAsync).WithName("ListEmergencyStops");
        return routes;
    }

    public sealed record EmergencyStopDto(string CommandId, string IncidentId, string AlertName, string Fingerprint, string StartsAt,
        string Scope, string Status, DateTimeOffset RequestedAt, DateTimeOffset? AnsweredAt, string? AnsweredBy, string? Answer);

    internal static async Task<Results<Ok<List<EmergencyStopDto>>, ProblemHttpResult>> ListAsync(Database database, int? limit,
        CancellationToken cancellationToken)
    {
        if (limit is < 1 or > 1000)
            return TypedResults.Problem(detail: "limit must be between 1 and 1000.", statusCode: 400, title: "Invalid query");
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<Row>(
            """
            SELECT command_id AS CommandId, incident_id AS IncidentId, alert_name AS AlertName, fingerprint AS Fingerprint,
                   starts_at AS StartsAt, scope AS Scope, status AS Status, requested_at AS RequestedAt, answered_at AS AnsweredAt,
                   answered_by AS AnsweredBy, answer AS Answer
            FROM emergency_stops ORDER BY requested_at DESC LIMIT @limit
            """, new { limit = limit ?? 100 });
        return TypedResults.Ok(rows.Select(r => new EmergencyStopDto(r.CommandId, r.IncidentId, r.AlertName, r.Fingerprint, r.StartsAt, r.Scope,
            r.Status, DateTimeOffset.FromUnixTimeMilliseconds(r.RequestedAt),
            r.AnsweredAt is { } a ? DateTimeOffset.FromUnixTimeMilliseconds(a) : null, r.AnsweredBy, r.Answer)).ToList());
    }

    private sealed record Row(string CommandId, string IncidentId, string AlertName, string Fingerprint, string StartsAt, string Scope,
        string Status, long RequestedAt, long? AnsweredAt, string? AnsweredBy, string? Answer);
}
