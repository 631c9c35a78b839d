using Prometheus;

namespace B25.Alerting.Enrichment;

/// <summary>The enrichment stage's metrics (b25_alerting_enrichment_*), per source: prometheus, loki.</summary>
internal static class EnrichmentMetrics
{
    public const string Prometheus = "prometheus";
    public const string Loki = "loki";

    public static readonly Histogram Duration = Metrics.CreateHistogram(
        "b25_alerting_enrichment_duration_seconds",
        "Time a source took within one enrichment (its queries run concurrently; cache hits included; at most about Enrichment:Timeout). Not observed for a disabled source.",
        new HistogramConfiguration
        {
            LabelNames = ["source"],
            Buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        });

    public static readonly Counter Failures = Metrics.CreateCounter(
        "b25_alerting_enrichment_failures_total",
        "Queries to a source that gave no answer, by reason: timeout, unreachable, http_error, bad_response, query_error.",
        new CounterConfiguration { LabelNames = ["source", "reason"] });

    public static readonly Counter Queries = Metrics.CreateCounter(
        "b25_alerting_enrichment_queries_total", "Queries sent to a source (not counting cache hits).",
        new CounterConfiguration { LabelNames = ["source"] });

    public static readonly Counter CacheHits = Metrics.CreateCounter(
        "b25_alerting_enrichment_cache_hits_total",
        "Queries answered from the enrichment cache or joined to the same query in flight (Enrichment:CacheFor).",
        new CounterConfiguration { LabelNames = ["source"] });

    public static readonly Counter Skipped = Metrics.CreateCounter(
        "b25_alerting_enrichment_queries_skipped_total",
        "Queries not made because an incident reached its cap (Enrichment:MaxPrometheusQueries, Enrichment:MaxLokiQueries).",
        new CounterConfiguration { LabelNames = ["source"] });

    /// <summary>Creates every series at 0, so increase() sees the first event.</summary>
    public static void Initialise()
    {
        foreach (var source in new[] { Prometheus, Loki })
        {
            foreach (var reason in Enum.GetValues<FailureReason>()) Failures.WithLabels(source, reason.Label());
            Queries.WithLabels(source);
            CacheHits.WithLabels(source);
            Skipped.WithLabels(source);
        }
    }
}
