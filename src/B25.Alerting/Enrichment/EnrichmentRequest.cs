using System.Globalization;

namespace B25.Alerting.Enrichment;

/// <summary>What the enrichment stage needs of one incident revision.</summary>
/// <param name="IncidentId">The incident the revision belongs to (logged, and copied into the result).</param>
/// <param name="GroupLabels">Labels common to every alert of the group (Alertmanager's <c>commonLabels</c>): what is
/// left of an alert's labels once these are removed is what distinguishes it (chart titles).</param>
/// <param name="Alerts">The incident's alerts as the state machine left them in this revision.</param>
internal sealed record EnrichmentRequest(
    string IncidentId,
    IReadOnlyDictionary<string, string> GroupLabels,
    IReadOnlyList<EnrichmentAlert> Alerts)
{
    /// <summary>
    /// The request for an incident as the channels see it. Alertmanager writes the zero time
    /// (<c>0001-01-01T00:00:00Z</c>) as the endsAt of a firing alert: that is no end.
    /// </summary>
    public static EnrichmentRequest From(Delivery.IncidentView incident) => new(
        incident.Id,
        incident.CommonLabels,
        incident.Alerts.Select(a => new EnrichmentAlert(
            a.Fingerprint,
            a.Status,
            a.Labels,
            a.Annotations,
            ParseTime(a.StartsAt) ?? DateTimeOffset.MinValue,
            ParseTime(a.EndsAt),
            a.GeneratorUrl)).ToList());

    private static DateTimeOffset? ParseTime(string? value) =>
        DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time) && time.Year > 1
            ? time
            : null;
}

/// <summary>One alert of the incident.</summary>
/// <param name="Status"><c>firing</c> or <c>resolved</c>.</param>
/// <param name="EndsAt">When a resolved alert ended; null while it fires.</param>
/// <param name="GeneratorUrl">Prometheus' graph link for the rule (<c>/graph?g0.expr=...</c>); may be missing.</param>
internal sealed record EnrichmentAlert(
    string Fingerprint,
    string Status,
    IReadOnlyDictionary<string, string> Labels,
    IReadOnlyDictionary<string, string> Annotations,
    DateTimeOffset StartsAt,
    DateTimeOffset? EndsAt,
    string? GeneratorUrl)
{
    public bool IsFiring => string.Equals(Status, "firing", StringComparison.OrdinalIgnoreCase);

    public string AlertName => Labels.TryGetValue("alertname", out var name) ? name : "";

    public string? Service => Labels.TryGetValue("service", out var service) && !string.IsNullOrWhiteSpace(service) ? service : null;
}
