using System.Text.Json;
using B25.Alerting.Enrichment;

namespace B25.Alerting.Tests.Enrichment;

public sealed class EnrichmentJsonTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 1, 10, 0, 0, TimeSpan.Zero);

    internal static IncidentEnrichment Sample() => new(
        "incident-7",
        Now,
        12.5,
        new EnrichmentSources(new SourceStatus(SourceState.Ok, null, 2, 1, 0), new SourceStatus(SourceState.Timeout, "1 of 1 queries had no answer within 1000 ms", 1),
            SourceStatus.Disabled),
        new Dictionary<string, AlertMetricContext>
        {
            ["fp1"] = new("fp1", "OrderBookStale", new Dictionary<string, string> { ["symbol"] = "BTCUSDT" }, Now.AddMinutes(-5), ContextState.Ok,
                Expression: "x > 5", QueriedExpression: "x", Threshold: new MetricThreshold(">", 5), WindowStart: Now.AddHours(-1), WindowEnd: Now,
                Current: double.NaN, CurrentAt: Now, Min: 0, Max: 9, Sparkline: "▁▂ ·█",
                SeriesLabels: new Dictionary<string, string> { ["__name__"] = "x", ["symbol"] = "BTCUSDT" },
                Points: [new(Now.AddMinutes(-2).ToUnixTimeMilliseconds(), double.PositiveInfinity), new(Now.AddMinutes(-1).ToUnixTimeMilliseconds(), double.NegativeInfinity),
                    new(Now.ToUnixTimeMilliseconds(), double.NaN), new(Now.ToUnixTimeMilliseconds(), 1e-9)]),
            ["fp2"] = new("fp2", "OrderBookStale", new Dictionary<string, string>(), Now, ContextState.NoExpression, Reason: "the alert has no generatorURL"),
        },
        new Dictionary<string, ServiceLogs>
        {
            ["market-data"] = new("market-data", ContextState.Ok, null, "{service_name=\"market-data\"}", Now.AddMinutes(-10), Now,
                [new LogLine(Now.AddSeconds(-3), "error: feed lost 🚨", "error"), new LogLine(Now.AddSeconds(-9), "warn: slow", "warn", true)]),
        },
        new Dictionary<string, GrafanaLink>
        {
            ["market-data"] = new("market-data", "b25-market-data", "http://grafana/d/b25-market-data?from=1&to=now&var-service=market-data"),
            [IncidentEnrichment.NoService] = new(null, "b25-system-health-overview", "http://grafana/d/b25-system-health-overview?from=1&to=now"),
        });

    [Fact]
    public void The_stored_form_round_trips_with_nan_and_infinities()
    {
        var json = EnrichmentJson.Serialize(Sample());
        var back = EnrichmentJson.Deserialize(json)!;

        Assert.Equal(json, EnrichmentJson.Serialize(back));
        Assert.Contains("\"state\":\"no_expression\"", json);
        Assert.Contains("\"state\":\"timeout\"", json);
        Assert.Contains("\"current\":\"NaN\"", json);
        Assert.Contains("\"v\":\"Infinity\"", json);
        var metric = back.MetricFor("fp1")!;
        Assert.True(double.IsNaN(metric.Current!.Value));
        Assert.Equal(double.PositiveInfinity, metric.Points![0].V);
        Assert.Equal(double.NegativeInfinity, metric.Points[1].V);
        Assert.Equal(1e-9, metric.Points[3].V);
        Assert.Equal(new MetricThreshold(">", 5), metric.Threshold);
        Assert.Equal("OrderBookStale · symbol=BTCUSDT", metric.Title());
        Assert.Equal(Now, back.EnrichedAt);
        Assert.Equal("error: feed lost 🚨", back.LogsFor("market-data")!.Lines[0].Line);
        Assert.Equal("b25-system-health-overview", back.GrafanaFor(new Dictionary<string, string> { ["alertname"] = "X" })!.DashboardUid);
        Assert.Equal("b25-market-data", back.GrafanaFor(new Dictionary<string, string> { ["service"] = "market-data" })!.DashboardUid);
    }

    [Fact]
    public void It_also_round_trips_through_default_serializer_options()
    {
        // Whoever stores it may use their own options: the special numbers are allowed by the types themselves.
        var json = JsonSerializer.Serialize(Sample());
        var back = JsonSerializer.Deserialize<IncidentEnrichment>(json)!;

        Assert.Equal(json, JsonSerializer.Serialize(back));
        Assert.True(double.IsNaN(back.MetricFor("fp1")!.Current!.Value));
        Assert.Equal(SourceState.Timeout, back.Sources.Loki.State);

        var web = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        var webJson = JsonSerializer.Serialize(Sample(), web);
        Assert.Equal(webJson, JsonSerializer.Serialize(JsonSerializer.Deserialize<IncidentEnrichment>(webJson, web), web));
    }
}
