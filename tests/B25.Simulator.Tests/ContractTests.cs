namespace B25.Simulator.Tests;

/// <summary>What each simulated service exposes matches prometheus/metrics-contract.yaml exactly.</summary>
public sealed class ContractTests
{
    public static TheoryData<string> Services => new(
        "market-data", "order-execution", "strategy-engine", "account-monitor", "risk-manager", "config-service", "dashboard-server");

    [Theory]
    [MemberData(nameof(Services))]
    public async Task Every_contract_metric_is_exposed_with_its_type_and_labels(string service)
    {
        var harness = new SimulationHarness();
        harness.Run(TimeSpan.FromSeconds(30));
        var exposition = await harness.ScrapeAsync(service);

        var expected = MetricsContract.For(service).ToArray();
        Assert.NotEmpty(expected);
        foreach (var metric in expected)
        {
            Assert.True(exposition.Types.TryGetValue(metric.Name, out var type), $"{service} does not expose {metric.Name}");
            Assert.Equal(metric.Type, type);

            var seriesNames = metric.Type == "histogram"
                ? new[] { metric.Name + "_bucket", metric.Name + "_sum", metric.Name + "_count" }
                : [metric.Name];
            foreach (var seriesName in seriesNames)
            {
                var samples = exposition.Named(seriesName).ToArray();
                Assert.True(samples.Length > 0, $"{service}: no sample of {seriesName}");
                var labels = seriesName.EndsWith("_bucket", StringComparison.Ordinal) ? [.. metric.Labels, "le"] : metric.Labels;
                foreach (var sample in samples)
                {
                    Assert.Equal(labels.Order(), sample.Labels.Keys.Order());
                    Assert.All(sample.Labels.Values, v => Assert.False(string.IsNullOrEmpty(v), $"{seriesName}: empty label value"));
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Services))]
    public async Task Nothing_outside_the_contract_is_exposed(string service)
    {
        var harness = new SimulationHarness();
        harness.Run(TimeSpan.FromSeconds(5));
        var exposition = await harness.ScrapeAsync(service);

        var contract = MetricsContract.For(service).Select(m => m.Name).ToHashSet();
        Assert.All(exposition.Types.Keys, name => Assert.True(contract.Contains(name), $"{service} exposes {name}, which the contract does not list"));
    }

    [Theory]
    [MemberData(nameof(Services))]
    public async Task Counters_only_go_up_and_histogram_buckets_are_cumulative(string service)
    {
        var harness = new SimulationHarness();
        harness.Run(TimeSpan.FromSeconds(10));
        var before = await harness.ScrapeAsync(service);
        harness.Run(TimeSpan.FromSeconds(30));
        var after = await harness.ScrapeAsync(service);

        foreach (var (name, type) in after.Types.Where(t => t.Value == "counter"))
        {
            foreach (var sample in after.Named(name))
            {
                var earlier = before.Named(name).FirstOrDefault(s => s.Labels.Count == sample.Labels.Count && s.Labels.All(l => sample[l.Key] == l.Value));
                Assert.True(earlier is null || sample.Value >= earlier.Value, $"{name} went down");
            }
        }

        foreach (var (name, _) in after.Types.Where(t => t.Value == "histogram"))
        {
            foreach (var series in after.Named(name + "_bucket").GroupBy(s => string.Join(",", s.Labels.Where(l => l.Key != "le").Select(l => l.Value))))
            {
                var counts = series.Select(s => s.Value).ToArray();
                Assert.True(counts.SequenceEqual(counts.Order()), $"{name} buckets not cumulative");
                Assert.Equal("+Inf", series.Last()["le"]);
            }
        }

        Assert.True(after.Sum("http_requests_total") > before.Sum("http_requests_total"), "no HTTP traffic");
    }
}
