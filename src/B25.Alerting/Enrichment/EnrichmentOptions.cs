using System.ComponentModel.DataAnnotations;

namespace B25.Alerting.Enrichment;

/// <summary>
/// The Enrichment section: the time budget and the cost bounds of the enrichment stage. The sources
/// themselves are configured in their own sections (Prometheus, Loki, Grafana); a source with no URL is off.
/// </summary>
internal sealed class EnrichmentOptions
{
    public const string Section = "Enrichment";

    /// <summary>The most enrichment may delay a page: sources still running then are cancelled and recorded as timed out.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How far back the PromQL context looks, ending now.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "7.00:00:00")]
    public TimeSpan Window { get; set; } = TimeSpan.FromHours(1);

    /// <summary>About how many points the window is queried at (the query step is Window / Points, whole seconds).</summary>
    [Range(10, 1000)]
    public int Points { get; set; } = 60;

    /// <summary>Characters of the Unicode sparkline.</summary>
    [Range(8, 60)]
    public int SparklineWidth { get; set; } = 24;

    /// <summary>Distinct PromQL queries one incident may make (alerts sharing an expression share one query; cache hits are free).</summary>
    [Range(0, 100)]
    public int MaxPrometheusQueries { get; set; } = 5;

    /// <summary>Distinct Loki queries (one per service) one incident may make.</summary>
    [Range(0, 100)]
    public int MaxLokiQueries { get; set; } = 3;

    /// <summary>Alerts of one incident given PromQL context (each keeps its points for a chart; firing alerts first).</summary>
    [Range(1, 10000)]
    public int MaxAlerts { get; set; } = 50;

    /// <summary>How long a query's answer is reused (by the incident's next revision and by other incidents); zero: not reused.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan CacheFor { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Warn/error log lines shown per service.</summary>
    [Range(1, 100)]
    public int LogLines { get; set; } = 5;

    /// <summary>Logs are searched from this long before the earliest startsAt of the service's alerts...</summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan LogsBefore { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>...to this long after the latest one (or now, if sooner).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan LogsAfter { get; set; } = TimeSpan.FromMinutes(1);
}

/// <summary>An optional http(s) base URL of a source: empty turns the source off.</summary>
internal static class SourceUrl
{
    public static bool IsValid(string? value) =>
        string.IsNullOrWhiteSpace(value) || Delivery.Hrefs.WebUri(value) is not null;

    /// <summary>The base address with a trailing slash, so relative request paths keep any path prefix.</summary>
    public static Uri? BaseAddress(string? value) =>
        string.IsNullOrWhiteSpace(value) ? null : new Uri(value.Trim().TrimEnd('/') + "/");
}
