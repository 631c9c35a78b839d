using B25.Alerting.Storage;
using Microsoft.AspNetCore.Http.HttpResults;

namespace B25.Alerting.RiskManager;

internal static class RiskManagerEndpoints
{
    public static IEndpointRouteBuilder MapEmergencyStops(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/emergency-stops", ListAsync).WithName("ListEmergencyStops");
        return routes;
    }

    /// <param name="FiredAt">When the alert fired as the cap counts it: its startsAt, or the request time when startsAt was ahead
    /// of it (null: a row from before the cap counted by firing time).</param>
    public sealed record EmergencyStopDto(string CommandId, string IncidentId, string AlertName, string Fingerprint, string StartsAt,
        string Scope, string Status, DateTimeOffset RequestedAt, DateTimeOffset? AnsweredAt, string? AnsweredBy, string? Answer,
        DateTimeOffset? FiredAt);

    internal static async Task<Results<Ok<List<EmergencyStopDto>>, ProblemHttpResult>> ListAsync(IEmergencyStopStore stops, int? limit,
        CancellationToken cancellationToken)
    {
        if (limit is < 1 or > 1000)
            return TypedResults.Problem(detail: "limit must be between 1 and 1000.", statusCode: 400, title: "Invalid query");
        var rows = await stops.ListAsync(limit ?? 100, cancellationToken);
        return TypedResults.Ok(rows.Select(r => new EmergencyStopDto(r.CommandId, r.IncidentId, r.AlertName, r.Fingerprint, r.StartsAt, r.Scope,
            r.Status, DateTimeOffset.FromUnixTimeMilliseconds(r.RequestedAt),
            r.AnsweredAt is { } a ? DateTimeOffset.FromUnixTimeMilliseconds(a) : null, r.AnsweredBy, r.Answer,
            r.FiredAt is { } f ? DateTimeOffset.FromUnixTimeMilliseconds(f) : null)).ToList());
    }
}
