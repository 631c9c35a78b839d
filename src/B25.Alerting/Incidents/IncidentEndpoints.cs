using B25.Alerting.Storage;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace B25.Alerting.Incidents;

/// <summary>Operator API: incidents with their alerts and deliveries.</summary>
internal static class IncidentEndpoints
{
    public static IEndpointRouteBuilder MapIncidents(this IEndpointRouteBuilder routes)
    {
        var api = routes.MapGroup("/api/incidents");
        api.MapGet("/", ListAsync).WithName("ListIncidents");
        api.MapGet("/{id}", GetAsync).WithName("GetIncident");
        // Linked from Slack and PagerDuty messages, next to /runbooks: outside /api.
        routes.MapGet("/incidents/{id}/chart.png", ChartAsync).WithName("IncidentChart");
        return routes;
    }

    /// <summary>
    /// The chart of the incident's value over the enrichment window (the series furthest past its threshold), as
    /// stored with its latest enriched revision: what the page showed, not a new query.
    /// </summary>
    internal static async Task<Results<FileContentHttpResult, NotFound<ProblemDetails>>> ChartAsync(
        IIncidentReadModel incidents, Delivery.EnrichmentStage enrichment, Delivery.Presentation.IncidentPresenter presenter, string id,
        CancellationToken cancellationToken)
    {
        var view = await incidents.LoadAsync(id, maxAlerts: 40, cancellationToken);
        if (view is null) return NotFoundProblem($"No incident '{id}'.");
        var found = await enrichment.LatestAsync(id, cancellationToken);
        var metric = found is null ? null : presenter.Present(view with { Enrichment = found }).ChartMetric;
        if (metric is null)
            return NotFoundProblem($"Incident '{id}' has no chart: no Prometheus context was found for it (Prometheus:Url not set, down, or no data).");
        return TypedResults.File(Enrichment.Charts.ChartRenderer.RenderPng(metric), "image/png");
    }

    private static NotFound<ProblemDetails> NotFoundProblem(string detail) =>
        TypedResults.NotFound(new ProblemDetails { Title = "Not found", Detail = detail, Status = 404 });

    public sealed record IncidentDto(string Id, string Receiver, string GroupKey, string State, long Revision, DateTimeOffset OpenedAt,
        DateTimeOffset? ClosedAt, IReadOnlyDictionary<string, string> GroupLabels, IReadOnlyDictionary<string, string> CommonLabels,
        int FiringCount, int ResolvedCount, IReadOnlyList<AlertDto> Alerts, IReadOnlyList<DeliveryDto> Deliveries, HandlingDto Handling,
        IReadOnlyList<ActionDto> Actions);

    /// <summary>Who handles the incident and its silence (null when none).</summary>
    public sealed record HandlingDto(bool Acknowledged, string? AcknowledgedBy, DateTimeOffset? AcknowledgedAt, string? AcknowledgedVia,
        bool Silenced, string? SilenceId, DateTimeOffset? SilencedUntil, string? SilencedBy);

    /// <summary>One human action as audited.</summary>
    public sealed record ActionDto(long Id, string Action, string Actor, string Source, DateTimeOffset RequestedAt, string Result, string? Detail,
        DateTimeOffset? CompletedAt);

    public sealed record AlertDto(string Fingerprint, string StartsAt, string Status, string? EndsAt,
        IReadOnlyDictionary<string, string> Labels, IReadOnlyDictionary<string, string> Annotations, string GeneratorUrl);

    public sealed record DeliveryDto(long Id, string Channel, string Target, string Kind, long Revision, string Status, long Attempts,
        string? LastError, DateTimeOffset CreatedAt, DateTimeOffset? CompletedAt);

    internal static async Task<Results<Ok<List<IncidentDto>>, ProblemHttpResult>> ListAsync(
        IIncidentReadModel incidents, IIncidentActionStore actions, TimeProvider time, string? state, int? limit, CancellationToken cancellationToken)
    {
        state ??= "open";
        if (state is not ("open" or "closed"))
            return TypedResults.Problem(detail: $"state must be 'open' or 'closed', not '{state}'.", statusCode: 400, title: "Invalid query");
        if (limit is < 1 or > 1000)
            return TypedResults.Problem(detail: "limit must be between 1 and 1000.", statusCode: 400, title: "Invalid query");

        var result = new List<IncidentDto>();
        foreach (var id in await incidents.ListAsync(state, limit ?? 100, cancellationToken))
            if (await LoadAsync(incidents, actions, time, id, cancellationToken) is { } incident) result.Add(incident);
        return TypedResults.Ok(result);
    }

    internal static async Task<Results<Ok<IncidentDto>, NotFound>> GetAsync(IIncidentReadModel incidents, IIncidentActionStore actions, TimeProvider time,
        string id, CancellationToken cancellationToken)
    {
        var incident = await LoadAsync(incidents, actions, time, id, cancellationToken);
        return incident is null ? TypedResults.NotFound() : TypedResults.Ok(incident);
    }

    private static async Task<IncidentDto?> LoadAsync(IIncidentReadModel incidents, IIncidentActionStore actions, TimeProvider time, string id,
        CancellationToken cancellationToken)
    {
        var view = await incidents.LoadAsync(id, maxAlerts: 1000, cancellationToken);
        if (view is null) return null;
        var deliveries = (await incidents.DeliveriesAsync(id, cancellationToken))
            .Select(d => new DeliveryDto(d.Id, d.Channel, d.Target, d.Kind, d.Revision, d.Status, d.Attempts, d.LastError,
                DateTimeOffset.FromUnixTimeMilliseconds(d.CreatedAt),
                d.CompletedAt is { } c ? DateTimeOffset.FromUnixTimeMilliseconds(c) : null))
            .ToList();
        return new IncidentDto(view.Id, view.Receiver, view.GroupKey, view.State, view.Revision, view.OpenedAt, view.ClosedAt,
            view.GroupLabels, view.CommonLabels, view.FiringCount, view.ResolvedCount,
            view.Alerts.Select(a => new AlertDto(a.Fingerprint, a.StartsAt, a.Status, a.EndsAt, a.Labels, a.Annotations, a.GeneratorUrl)).ToList(),
            deliveries, Handling(view.Handling, time.GetUtcNow()),
            (await actions.ListAsync(id, cancellationToken)).Select(a => new ActionDto(a.Id, a.Action, a.Actor, a.Source,
                DateTimeOffset.FromUnixTimeMilliseconds(a.RequestedAt), a.Result, a.Detail,
                a.CompletedAt is { } c ? DateTimeOffset.FromUnixTimeMilliseconds(c) : null)).ToList());
    }

    private static HandlingDto Handling(Delivery.IncidentHandling? h, DateTimeOffset now) =>
        h is null
            ? new HandlingDto(false, null, null, null, false, null, null, null)
            : new HandlingDto(h.Acknowledged, h.AcknowledgedBy, h.AcknowledgedAt, h.AcknowledgedVia, h.SilencedAt(now), h.SilenceId, h.SilencedUntil,
                h.SilencedBy);
}
