using System.Text.Json;
using System.Text.Json.Serialization;

namespace B25.Alerting.Enrichment;

/// <summary>
/// What the enrichment stage found for one incident revision. Stored with the revision (System.Text.Json,
/// with or without <see cref="EnrichmentJson"/>), so retries and edits render from it without querying again.
/// Every part is optional: a source that is down, slow or not configured leaves its part empty and says why.
/// </summary>
/// <param name="EnrichedAt">When the enrichment started: the end of every query window.</param>
/// <param name="DurationMs">How long the enrichment took (at most about <c>Enrichment:Timeout</c>).</param>
/// <param name="Metrics">PromQL context per alert fingerprint (every alert of the request has an entry).</param>
/// <param name="Logs">Recent warn/error log lines per <c>service</c> label value.</param>
/// <param name="Grafana">Dashboard link per <c>service</c> label value (or <c>job</c>, for an alert without service whose job
/// names a known service); key <see cref="NoService"/> for alerts without either. Look up with <see cref="GrafanaFor"/>.</param>
[JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)]
internal sealed record IncidentEnrichment(
    string IncidentId,
    DateTimeOffset EnrichedAt,
    double DurationMs,
    EnrichmentSources Sources,
    IReadOnlyDictionary<string, AlertMetricContext> Metrics,
    IReadOnlyDictionary<string, ServiceLogs> Logs,
    IReadOnlyDictionary<string, GrafanaLink> Grafana)
{
    /// <summary>The <see cref="Grafana"/> key of the link for alerts that carry no service label.</summary>
    public const string NoService = "";

    public AlertMetricContext? MetricFor(string fingerprint) => Metrics.GetValueOrDefault(fingerprint);

    public ServiceLogs? LogsFor(string? service) => service is null ? null : Logs.GetValueOrDefault(service);

    /// <summary>The dashboard link for an alert with these labels (its service's, else the default dashboard's).</summary>
    public GrafanaLink? GrafanaFor(IReadOnlyDictionary<string, string> alertLabels) =>
        Grafana.GetValueOrDefault(Enrichment.Grafana.GrafanaLinks.KeyFor(alertLabels)) ?? Grafana.GetValueOrDefault(NoService);
}

/// <summary>How each source fared for this enrichment.</summary>
internal sealed record EnrichmentSources(SourceStatus Prometheus, SourceStatus Loki, SourceStatus Grafana);

/// <summary>One source's outcome.</summary>
/// <param name="State">ok; timeout (still running at <c>Enrichment:Timeout</c>: cancelled, what finished is kept);
/// error (see <paramref name="Error"/>); disabled (no URL configured: nothing was called).</param>
/// <param name="Queries">Requests sent to the source for this enrichment.</param>
/// <param name="CacheHits">Queries answered from the short-lived cache (or joined to the same query in flight).</param>
/// <param name="Skipped">Queries not made because of the per-incident cap (<c>Enrichment:MaxPrometheusQueries</c>, <c>MaxLokiQueries</c>).</param>
internal sealed record SourceStatus(SourceState State, string? Error = null, int Queries = 0, int CacheHits = 0, int Skipped = 0)
{
    public static readonly SourceStatus Disabled = new(SourceState.Disabled);
}

[JsonConverter(typeof(JsonStringEnumConverter<SourceState>))]
internal enum SourceState
{
    [JsonStringEnumMemberName("ok")] Ok,
    [JsonStringEnumMemberName("timeout")] Timeout,
    [JsonStringEnumMemberName("error")] Error,
    [JsonStringEnumMemberName("disabled")] Disabled,
}

/// <summary>Why a part of the context is there or not.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ContextState>))]
internal enum ContextState
{
    /// <summary>Found: metrics have a series, logs have lines.</summary>
    [JsonStringEnumMemberName("ok")] Ok,
    /// <summary>No usable PromQL in the alert's generatorURL (missing or garbled): not an error.</summary>
    [JsonStringEnumMemberName("no_expression")] NoExpression,
    /// <summary>The query answered, with nothing in the window (no series; logs: no warn/error line).</summary>
    [JsonStringEnumMemberName("no_data")] NoData,
    /// <summary>The query answered with series, none of them the alert's: none is shown rather than an unrelated one.</summary>
    [JsonStringEnumMemberName("no_matching_series")] NoMatchingSeries,
    /// <summary>Not queried: the per-incident cap was reached, or the alert is past the alerts given context.</summary>
    [JsonStringEnumMemberName("skipped")] Skipped,
    [JsonStringEnumMemberName("timeout")] Timeout,
    [JsonStringEnumMemberName("error")] Error,
    /// <summary>The source has no URL configured.</summary>
    [JsonStringEnumMemberName("disabled")] Disabled,
}

/// <summary>The PromQL context of one alert.</summary>
/// <param name="AlertName">The alert's <c>alertname</c>.</param>
/// <param name="DistinguishingLabels">The alert's labels minus the group's common labels and alertname.</param>
/// <param name="Reason">Why there is no series (human words), when <paramref name="State"/> is not ok.</param>
/// <param name="Expression">The rule's expression from the generatorURL.</param>
/// <param name="QueriedExpression">What was queried: the left side of a top-level comparison with a constant
/// (so the graph shows the value crossing the threshold, not only the points above it), else the expression.</param>
/// <param name="Threshold">The constant of a top-level comparison, when the rule is one.</param>
/// <param name="Current">The series' last value in the window (NaN and ±Inf kept as such).</param>
/// <param name="Min">Smallest finite value in the window (NaN and ±Inf are skipped); null when there is none.</param>
/// <param name="Sparkline">The window as Unicode blocks (▁..█), oldest left; a space where the series has no finite value.</param>
/// <param name="SeriesLabels">The labels of the series shown.</param>
/// <param name="Points">The series' samples at the query step, for a chart.</param>
[JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)]
internal sealed record AlertMetricContext(
    string Fingerprint,
    string AlertName,
    IReadOnlyDictionary<string, string> DistinguishingLabels,
    DateTimeOffset StartsAt,
    ContextState State,
    string? Reason = null,
    string? Expression = null,
    string? QueriedExpression = null,
    MetricThreshold? Threshold = null,
    DateTimeOffset? WindowStart = null,
    DateTimeOffset? WindowEnd = null,
    double? Current = null,
    DateTimeOffset? CurrentAt = null,
    double? Min = null,
    double? Max = null,
    string? Sparkline = null,
    IReadOnlyDictionary<string, string>? SeriesLabels = null,
    IReadOnlyList<MetricPoint>? Points = null)
{
    /// <summary>Alert name and distinguishing labels: <c>OrderBookStale · symbol=BTCUSDT</c>.</summary>
    public string Title() =>
        DistinguishingLabels.Count == 0
            ? AlertName
            : $"{AlertName} · {string.Join(", ", DistinguishingLabels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}"))}";
}

/// <summary>The rule fires when <c>value Comparison Value</c> (a rule written <c>5 &lt; x</c> is stored as <c>&gt; 5</c>).</summary>
[JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)]
internal sealed record MetricThreshold(string Comparison, double Value)
{
    public override string ToString() => $"{Comparison} {Value.ToString("G6", System.Globalization.CultureInfo.InvariantCulture)}";
}

/// <summary>One sample: unix milliseconds and value.</summary>
[JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)]
internal sealed record MetricPoint([property: JsonPropertyName("t")] long T, [property: JsonPropertyName("v")] double V)
{
    [JsonIgnore] public DateTimeOffset Time => DateTimeOffset.FromUnixTimeMilliseconds(T);
}

/// <summary>Recent warn/error log lines of one service, newest first.</summary>
/// <param name="Query">The LogQL sent.</param>
internal sealed record ServiceLogs(
    string Service,
    ContextState State,
    string? Reason,
    string? Query,
    DateTimeOffset? From,
    DateTimeOffset? To,
    IReadOnlyList<LogLine> Lines);

/// <param name="Level">The stream's level label (warn, error, fatal), when it has one.</param>
/// <param name="Truncated">The line was cut to <c>Loki:MaxLineLength</c> characters.</param>
internal sealed record LogLine(DateTimeOffset Time, string Line, string? Level, bool Truncated = false);

/// <summary>A deep link into the Grafana dashboard of a service.</summary>
/// <param name="Service">The service label value; null for the default dashboard of alerts without one.</param>
internal sealed record GrafanaLink(string? Service, string DashboardUid, string Url);

/// <summary>The stored form of <see cref="IncidentEnrichment"/>: camelCase, source-generated.</summary>
internal static class EnrichmentJson
{
    public static string Serialize(IncidentEnrichment enrichment) =>
        JsonSerializer.Serialize(enrichment, EnrichmentJsonContext.Default.IncidentEnrichment);

    public static IncidentEnrichment? Deserialize(string json) =>
        JsonSerializer.Deserialize(json, EnrichmentJsonContext.Default.IncidentEnrichment);
}

[JsonSerializable(typeof(IncidentEnrichment))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
internal sealed partial class EnrichmentJsonContext : JsonSerializerContext;
