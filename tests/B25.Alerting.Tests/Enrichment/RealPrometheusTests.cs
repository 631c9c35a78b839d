using System.Text;
using B25.Alerting.Enrichment;
using B25.Alerting.Tests.Support;

namespace B25.Alerting.Tests.Enrichment;

/// <summary>
/// The hour of data the PromQL context is checked against, ending at <see cref="PrometheusServer.Now"/>:
/// a queue that ramps across its threshold, a balance that falls through one, a ratio with NaN and ±Inf in it,
/// and 500 symbols over three metrics for the storm.
/// </summary>
public sealed class EnrichmentPrometheus : PrometheusServer
{
    public const int Symbols = 500;

    public static readonly string[] StormMetrics = ["b25_test_symbol_lag_seconds", "b25_test_symbol_spread_bps", "b25_test_symbol_depth_levels"];

    public const string QueueLabels = "job=\"order-execution\",instance=\"order-execution:9091\",service=\"order-execution\"";
    public const string OtherQueueLabels = "job=\"order-execution\",instance=\"order-execution-2:9091\",service=\"order-execution\"";
    public const string BalanceLabels = "job=\"account-monitor\",instance=\"account-monitor:9093\",service=\"account-monitor\"";
    public const string RatioLabels = "job=\"market-data\",instance=\"market-data:9090\",service=\"market-data\",symbol=\"BTCUSDT\"";

    /// <summary>The queue: 0 an hour ago, +3 a minute, 180 now (crosses 100 about 27 minutes ago).</summary>
    public static double Queue(double minutesAgo) => Math.Max(0, 3 * (60 - minutesAgo));

    /// <summary>The balance: 2000 an hour ago, -25 a minute, 500 now.</summary>
    public static double Balance(double minutesAgo) => 2000 - 25 * (60 - minutesAgo);

    /// <summary>The ratio: (minute mod 10) / 10, with +Inf 40, -Inf 15 and NaN 30 minutes ago and now.</summary>
    public static double Ratio(int minutesAgo) => minutesAgo switch
    {
        40 => double.PositiveInfinity,
        15 => double.NegativeInfinity,
        30 or 0 => double.NaN,
        _ => minutesAgo % 10 / 10.0,
    };

    protected override string OpenMetrics(DateTimeOffset now)
    {
        var text = new StringBuilder();
        // 65 minutes of samples every 15 s: the hour's first step has five minutes of lookback behind it.
        var quarterMinutes = Enumerable.Range(0, 65 * 4 + 1).Select(i => 65 - i / 4.0).ToList();
        text.Append("# TYPE b25_test_queue_depth gauge\n");
        PrometheusServer.AppendSeries(text, "b25_test_queue_depth", QueueLabels, quarterMinutes.Select(m => (now.AddMinutes(-m), Queue(m))));
        PrometheusServer.AppendSeries(text, "b25_test_queue_depth", OtherQueueLabels, quarterMinutes.Select(m => (now.AddMinutes(-m), 10.0)));
        text.Append("# TYPE b25_test_balance_usd gauge\n");
        PrometheusServer.AppendSeries(text, "b25_test_balance_usd", BalanceLabels, quarterMinutes.Select(m => (now.AddMinutes(-m), Balance(m))));
        // Special values only on whole minutes, where the query steps land; the samples between repeat the minute's value.
        text.Append("# TYPE b25_test_spread_ratio gauge\n");
        PrometheusServer.AppendSeries(text, "b25_test_spread_ratio", RatioLabels,
            quarterMinutes.Select(m => (now.AddMinutes(-m), m % 1 == 0 ? Ratio((int)m) : 0.5)));
        // The storm: one series per symbol, in three metrics, once a minute; value = the symbol's number.
        var minutes = Enumerable.Range(0, 66).Select(i => 65 - i).ToList();
        for (var metric = 0; metric < StormMetrics.Length; metric++)
        {
            text.Append("# TYPE ").Append(StormMetrics[metric]).Append(" gauge\n");
            for (var symbol = metric; symbol < Symbols; symbol += StormMetrics.Length)
                PrometheusServer.AppendSeries(text, StormMetrics[metric], $"service=\"market-data\",symbol=\"{Symbol(symbol)}\"",
                    minutes.Select(m => (now.AddMinutes(-m), (double)symbol)));
        }
        text.Append("# EOF\n");
        return text.ToString();
    }

    public static string Symbol(int i) => $"S{i:000}";
}

[CollectionDefinition(Name)]
public sealed class EnrichmentPrometheusCollection : ICollectionFixture<EnrichmentPrometheus>
{
    public const string Name = "Enrichment against a real Prometheus";
}

/// <summary>PromQL context from a real Prometheus (Debian's 2.42) holding known data.</summary>
[Collection(EnrichmentPrometheusCollection.Name)]
public sealed class RealPrometheusTests(EnrichmentPrometheus prometheus)
{
    private static readonly TimeSpan Window = TimeSpan.FromHours(1);

    private EnricherHost Host(int maxQueries = 5, string timeout = "00:00:10") => new(new Dictionary<string, string?>
    {
        ["Prometheus:Url"] = prometheus.Url,
        // Correctness here, not speed: a busy 2-core machine must not turn a slow answer into a failed test.
        ["Enrichment:Timeout"] = timeout,
        ["Enrichment:MaxPrometheusQueries"] = maxQueries.ToString(),
        ["Enrichment:MaxAlerts"] = "1000",
    }, new SettableClock(prometheus.Now));

    private EnrichmentAlert Alert(string fingerprint, string expression, params (string, string)[] labels) =>
        TestAlerts.Firing(fingerprint, expression, prometheus.Now.AddMinutes(-20), [("alertname", "Test"), ("severity", "critical"), ("cluster", "b25-trading"), .. labels]);

    private static (string, string)[] Labels(string openMetricsLabels) =>
        openMetricsLabels.Split(',').Select(l => l.Split('=')).Select(p => (p[0], p[1].Trim('"'))).ToArray();

    [Fact]
    public async Task The_alert_gets_the_value_min_max_sparkline_and_threshold_of_its_series_crossing_the_threshold()
    {
        using var host = Host();
        var alert = Alert("queue", "b25_test_queue_depth > 100", Labels(EnrichmentPrometheus.QueueLabels));

        var enrichment = await host.Enricher.EnrichAsync(TestAlerts.Incident(alert), CancellationToken.None);

        Assert.Equal(SourceState.Ok, enrichment.Sources.Prometheus.State);
        var metric = enrichment.MetricFor("queue")!;
        Assert.Equal(ContextState.Ok, metric.State);
        Assert.Equal("b25_test_queue_depth > 100", metric.Expression);
        Assert.Equal("b25_test_queue_depth", metric.QueriedExpression);
        Assert.Equal(new MetricThreshold(">", 100), metric.Threshold);
        Assert.Equal(180, metric.Current);
        Assert.Equal(prometheus.Now, metric.CurrentAt);
        // The left side was queried: values below the threshold are there too, not only those above it.
        Assert.Equal(0, metric.Min);
        Assert.Equal(180, metric.Max);
        Assert.Contains(metric.Points!, p => p.V < 100);
        Assert.Equal(61, metric.Points!.Count); // an hour at a 60 s step, both ends included
        Assert.Equal(prometheus.Now - Window, metric.WindowStart);
        Assert.Equal(prometheus.Now, metric.WindowEnd);
        Assert.Equal("order-execution:9091", metric.SeriesLabels!["instance"]);
        Assert.Equal(24, metric.Sparkline!.Length);
        Assert.Equal('▁', metric.Sparkline[0]);
        Assert.Equal('█', metric.Sparkline[^1]);
        Assert.Equal(metric.Sparkline.Order().ToArray(), metric.Sparkline.ToArray()); // rises throughout
        for (var i = 0; i < metric.Points.Count; i++)
            Assert.Equal(EnrichmentPrometheus.Queue(60 - i), metric.Points[i].V, 9);
    }

    [Fact]
    public async Task Each_alert_gets_its_own_series_among_several_and_none_when_its_series_is_not_there()
    {
        using var host = Host();
        var mine = Alert("mine", "b25_test_queue_depth > 100", Labels(EnrichmentPrometheus.QueueLabels));
        var other = Alert("other", "b25_test_queue_depth > 100", Labels(EnrichmentPrometheus.OtherQueueLabels));
        var gone = Alert("gone", "b25_test_queue_depth > 100", ("job", "order-execution"), ("instance", "order-execution-9:9091"), ("service", "order-execution"));

        var enrichment = await host.Enricher.EnrichAsync(TestAlerts.Incident(mine, other, gone), CancellationToken.None);

        Assert.Equal(180, enrichment.MetricFor("mine")!.Current);
        Assert.Equal("order-execution:9091", enrichment.MetricFor("mine")!.SeriesLabels!["instance"]);
        Assert.Equal(10, enrichment.MetricFor("other")!.Current);
        Assert.Equal("order-execution-2:9091", enrichment.MetricFor("other")!.SeriesLabels!["instance"]);
        var none = enrichment.MetricFor("gone")!;
        Assert.Equal(ContextState.NoMatchingSeries, none.State);
        Assert.Null(none.Points);
        Assert.Null(none.Current);
        Assert.Contains("2 series", none.Reason);
        Assert.Equal(1, enrichment.Sources.Prometheus.Queries); // one expression, one query, three alerts
    }

    [Theory]
    [InlineData("b25_test_balance_usd < 1000", "<")]
    [InlineData("1000 > b25_test_balance_usd", "<")]
    [InlineData("b25_test_balance_usd <= 1000", "<=")]
    public async Task The_threshold_is_found_on_either_side_of_the_comparison(string expression, string comparison)
    {
        using var host = Host();
        var alert = Alert("balance", expression, Labels(EnrichmentPrometheus.BalanceLabels));

        var metric = (await host.Enricher.EnrichAsync(TestAlerts.Incident(alert), CancellationToken.None)).MetricFor("balance")!;

        Assert.Equal(ContextState.Ok, metric.State);
        Assert.Equal(new MetricThreshold(comparison, 1000), metric.Threshold);
        Assert.Equal("b25_test_balance_usd", metric.QueriedExpression);
        Assert.Equal(500, metric.Current);
        Assert.Equal(500, metric.Min);
        Assert.Equal(2000, metric.Max);
        Assert.Equal('█', metric.Sparkline![0]);
        Assert.Equal('▁', metric.Sparkline[^1]);
    }

    [Fact]
    public async Task An_expression_without_data_says_no_data()
    {
        using var host = Host();
        var alert = Alert("absent", "b25_test_never_written > 1", ("service", "market-data"));

        var enrichment = await host.Enricher.EnrichAsync(TestAlerts.Incident(alert), CancellationToken.None);

        Assert.Equal(SourceState.Ok, enrichment.Sources.Prometheus.State);
        var metric = enrichment.MetricFor("absent")!;
        Assert.Equal(ContextState.NoData, metric.State);
        Assert.Equal(new MetricThreshold(">", 1), metric.Threshold);
        Assert.Null(metric.Sparkline);
    }

    [Fact]
    public async Task Nan_and_infinities_are_shown_as_such_and_left_out_of_min_and_max()
    {
        using var host = Host();
        var alert = Alert("ratio", "b25_test_spread_ratio > 0.5", Labels(EnrichmentPrometheus.RatioLabels));

        var metric = (await host.Enricher.EnrichAsync(TestAlerts.Incident(alert), CancellationToken.None)).MetricFor("ratio")!;

        Assert.Equal(ContextState.Ok, metric.State);
        Assert.True(double.IsNaN(metric.Current!.Value), $"current {metric.Current}");
        Assert.Equal(0, metric.Min);
        Assert.Equal(0.9, metric.Max!.Value, 9);
        Assert.Equal(double.PositiveInfinity, metric.Points!.Single(p => p.Time == prometheus.Now.AddMinutes(-40)).V);
        Assert.Equal(double.NegativeInfinity, metric.Points!.Single(p => p.Time == prometheus.Now.AddMinutes(-15)).V);
        Assert.True(double.IsNaN(metric.Points!.Single(p => p.Time == prometheus.Now.AddMinutes(-30)).V));
        Assert.Contains('█', metric.Sparkline!);
        // The chart of it renders (gaps where the values are not finite).
        Assert.True(B25.Alerting.Enrichment.Charts.ChartRenderer.RenderPng(metric).Length > 1000);
    }

    [Fact]
    public async Task A_storm_of_500_alerts_over_3_expressions_makes_3_queries_and_every_alert_gets_its_series()
    {
        using var host = Host();
        var alerts = Enumerable.Range(0, EnrichmentPrometheus.Symbols).Select(i =>
        {
            var metric = EnrichmentPrometheus.StormMetrics[i % 3];
            return Alert($"storm-{i}", $"{metric} > -1", ("service", "market-data"), ("symbol", EnrichmentPrometheus.Symbol(i)));
        }).ToArray();
        var before = await prometheus.QueryRangeRequestsAsync();

        var enrichment = await host.Enricher.EnrichAsync(TestAlerts.Incident("storm", alerts), CancellationToken.None);

        var made = await prometheus.QueryRangeRequestsAsync() - before;
        Assert.Equal(3, made);
        Assert.Equal(3, enrichment.Sources.Prometheus.Queries);
        Assert.Equal(SourceState.Ok, enrichment.Sources.Prometheus.State);
        for (var i = 0; i < alerts.Length; i++)
        {
            var metric = enrichment.MetricFor($"storm-{i}")!;
            Assert.True(metric.State == ContextState.Ok, $"storm-{i}: {metric.State} {metric.Reason}");
            Assert.Equal(i, metric.Current);
            Assert.Equal(EnrichmentPrometheus.Symbol(i), metric.SeriesLabels!["symbol"]);
        }
    }

    [Fact]
    public async Task More_distinct_expressions_than_the_cap_query_only_the_cap_and_say_the_rest_were_skipped()
    {
        using var host = Host(maxQueries: 5);
        var alerts = Enumerable.Range(0, 7).Select(i =>
            Alert($"capped-{i}", $"b25_test_symbol_lag_seconds{{symbol=\"{EnrichmentPrometheus.Symbol(i * 3)}\"}} > -1",
                ("service", "market-data"), ("symbol", EnrichmentPrometheus.Symbol(i * 3)))).ToArray();
        var before = await prometheus.QueryRangeRequestsAsync();

        var enrichment = await host.Enricher.EnrichAsync(TestAlerts.Incident("capped", alerts), CancellationToken.None);

        Assert.Equal(5, await prometheus.QueryRangeRequestsAsync() - before);
        Assert.Equal(5, enrichment.Sources.Prometheus.Queries);
        Assert.Equal(2, enrichment.Sources.Prometheus.Skipped);
        Assert.Equal(5, alerts.Count(a => enrichment.MetricFor(a.Fingerprint)!.State == ContextState.Ok));
        var skipped = alerts.Select(a => enrichment.MetricFor(a.Fingerprint)!).Where(m => m.State == ContextState.Skipped).ToList();
        Assert.Equal(2, skipped.Count);
        Assert.All(skipped, m => Assert.Contains("MaxPrometheusQueries", m.Reason));
    }

    [Fact]
    public async Task The_next_revision_and_other_incidents_reuse_the_answers_for_a_while()
    {
        var clock = new SettableClock(prometheus.Now);
        using var host = new EnricherHost(new Dictionary<string, string?>
        {
            ["Prometheus:Url"] = prometheus.Url,
            ["Enrichment:Timeout"] = "00:00:10",
            ["Enrichment:CacheFor"] = "00:00:30",
        }, clock);
        var queue = Alert("queue", "b25_test_queue_depth > 100", Labels(EnrichmentPrometheus.QueueLabels));
        var other = Alert("other", "b25_test_queue_depth > 150", Labels(EnrichmentPrometheus.OtherQueueLabels));
        var hitsBefore = Observability_CacheHits();
        var before = await prometheus.QueryRangeRequestsAsync();

        var first = await host.Enricher.EnrichAsync(TestAlerts.Incident("one", [queue]), CancellationToken.None);
        clock.Advance(TimeSpan.FromSeconds(20));
        // The next revision, and another incident whose rule has the same left side.
        var again = await host.Enricher.EnrichAsync(TestAlerts.Incident("one", [queue]), CancellationToken.None);
        var another = await host.Enricher.EnrichAsync(TestAlerts.Incident("two", [other]), CancellationToken.None);

        Assert.Equal(1, await prometheus.QueryRangeRequestsAsync() - before);
        Assert.Equal((1, 0), (first.Sources.Prometheus.Queries, first.Sources.Prometheus.CacheHits));
        Assert.Equal((0, 1), (again.Sources.Prometheus.Queries, again.Sources.Prometheus.CacheHits));
        Assert.Equal((0, 1), (another.Sources.Prometheus.Queries, another.Sources.Prometheus.CacheHits));
        Assert.Equal(first.MetricFor("queue")!.Sparkline, again.MetricFor("queue")!.Sparkline);
        Assert.Equal(new MetricThreshold(">", 150), another.MetricFor("other")!.Threshold);
        Assert.Equal(10, another.MetricFor("other")!.Current);
        Assert.True(Observability_CacheHits() - hitsBefore >= 2, "cache hits are counted"); // other tests may add theirs

        // Past Enrichment:CacheFor the answer is asked for again.
        clock.Advance(TimeSpan.FromSeconds(11));
        var later = await host.Enricher.EnrichAsync(TestAlerts.Incident("one", [queue]), CancellationToken.None);
        Assert.Equal(1, later.Sources.Prometheus.Queries);
        Assert.Equal(2, await prometheus.QueryRangeRequestsAsync() - before);
    }

    [Fact]
    public async Task A_missing_or_garbled_generator_url_gives_no_context_and_no_query_and_is_not_an_error()
    {
        using var host = Host();
        var missing = Alert("missing", "x").WithGeneratorUrl(null);
        var garbled = Alert("garbled", "x").WithGeneratorUrl("http://prometheus:9090/graph?g0.expr=rate%28x%5B5m");
        var before = await prometheus.QueryRangeRequestsAsync();

        var enrichment = await host.Enricher.EnrichAsync(TestAlerts.Incident(missing, garbled), CancellationToken.None);

        Assert.Equal(0, await prometheus.QueryRangeRequestsAsync() - before);
        Assert.Equal(SourceState.Ok, enrichment.Sources.Prometheus.State);
        Assert.Equal(ContextState.NoExpression, enrichment.MetricFor("missing")!.State);
        Assert.Equal(ContextState.NoExpression, enrichment.MetricFor("garbled")!.State);
    }

    [Fact]
    public async Task An_expression_prometheus_refuses_is_said_for_its_alert_while_the_source_stays_ok()
    {
        using var host = Host();
        var refused = Alert("refused", "rate(b25_test_queue_depth) > 1"); // rate() needs a range vector
        var fine = Alert("fine", "b25_test_queue_depth > 100", Labels(EnrichmentPrometheus.QueueLabels));

        var enrichment = await host.Enricher.EnrichAsync(TestAlerts.Incident(refused, fine), CancellationToken.None);

        Assert.Equal(SourceState.Ok, enrichment.Sources.Prometheus.State);
        Assert.Equal(ContextState.Error, enrichment.MetricFor("refused")!.State);
        Assert.Contains("refused the query", enrichment.MetricFor("refused")!.Reason);
        Assert.Equal(ContextState.Ok, enrichment.MetricFor("fine")!.State);
    }

    private static double Observability_CacheHits() =>
        EnrichmentMetrics.CacheHits.WithLabels(EnrichmentMetrics.Prometheus).Value;
}
