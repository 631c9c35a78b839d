using B25.Alerting.Enrichment;
using B25.Alerting.Enrichment.PromQl;

namespace B25.Alerting.Tests.Enrichment;

public sealed class MetricContextTests
{
    private static readonly DateTimeOffset Start = new(2026, 12, 1, 10, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset End = Start.AddHours(1);

    private static PromSeries Series(params (string, string)[] labels) =>
        new(labels.ToDictionary(l => l.Item1, l => l.Item2), [new MetricPoint(End.ToUnixTimeMilliseconds(), 1)]);

    private static Dictionary<string, string> Labels(params (string, string)[] labels) => labels.ToDictionary(l => l.Item1, l => l.Item2);

    [Fact]
    public void The_series_whose_shared_labels_all_equal_the_alerts_is_picked()
    {
        var mine = Series(("__name__", "lag"), ("symbol", "ETH"), ("service", "market-data"));
        var series = new[] { Series(("__name__", "lag"), ("symbol", "BTC"), ("service", "market-data")), mine, Series(("symbol", "SOL")) };

        var (picked, reason) = MetricContextBuilder.PickSeries(series,
            Labels(("alertname", "Lag"), ("symbol", "ETH"), ("service", "market-data"), ("severity", "critical"), ("cluster", "b25")));

        Assert.Same(mine, picked);
        Assert.Null(reason);
    }

    [Fact]
    public void No_series_is_shown_rather_than_an_unrelated_one()
    {
        var series = new[] { Series(("symbol", "BTC")), Series(("symbol", "SOL")) };

        var (picked, reason) = MetricContextBuilder.PickSeries(series, Labels(("symbol", "ETH")));

        Assert.Null(picked);
        Assert.Contains("none of them this alert's", reason);
    }

    [Fact]
    public void The_series_sharing_the_most_labels_wins_and_a_tie_shows_nothing()
    {
        var aggregate = Series(); // sum(...) without labels matches anything
        var exact = Series(("instance", "a"));
        Assert.Same(exact, MetricContextBuilder.PickSeries([aggregate, exact], Labels(("instance", "a"))).Series);
        Assert.Same(aggregate, MetricContextBuilder.PickSeries([aggregate], Labels(("instance", "a"))).Series);

        var (picked, reason) = MetricContextBuilder.PickSeries([Series(("a", "1")), Series(("b", "2"))], Labels(("a", "1"), ("b", "2")));
        Assert.Null(picked);
        Assert.Contains("equally", reason);
    }

    [Fact]
    public void Value_min_max_skip_nan_and_inf_and_keep_them_as_the_current_value()
    {
        var points = new List<MetricPoint>();
        for (var i = 0; i <= 60; i++)
        {
            var value = i switch { 10 => double.PositiveInfinity, 20 => double.NegativeInfinity, 30 => double.NaN, 60 => double.NaN, _ => i % 7 };
            points.Add(new MetricPoint(Start.AddMinutes(i).ToUnixTimeMilliseconds(), value));
        }
        var range = new PromRange(Start, End, TimeSpan.FromMinutes(1), [new PromSeries(new Dictionary<string, string>(), points)]);
        var seed = new AlertMetricContext("fp", "A", new Dictionary<string, string>(), Start.AddMinutes(40), ContextState.Skipped);

        var context = MetricContextBuilder.Build(seed, new Dictionary<string, string>(), new PromQlQuery("x > 5", "x", new MetricThreshold(">", 5)), range, 24);

        Assert.Equal(ContextState.Ok, context.State);
        Assert.True(double.IsNaN(context.Current!.Value));
        Assert.Equal(End, context.CurrentAt);
        Assert.Equal(0, context.Min);
        Assert.Equal(6, context.Max);
        Assert.Equal(61, context.Points!.Count);
        Assert.Equal(24, context.Sparkline!.Length);
        Assert.Equal("x", context.QueriedExpression);
        Assert.Equal(new MetricThreshold(">", 5), context.Threshold);
    }

    [Fact]
    public void No_series_or_no_samples_is_no_data()
    {
        var seed = new AlertMetricContext("fp", "A", new Dictionary<string, string>(), Start, ContextState.Skipped);
        var query = new PromQlQuery("x > 1", "x", new MetricThreshold(">", 1));

        Assert.Equal(ContextState.NoData, MetricContextBuilder.Build(seed, Labels(), query, new PromRange(Start, End, TimeSpan.FromMinutes(1), []), 24).State);
        Assert.Equal(ContextState.NoData, MetricContextBuilder.Build(seed, Labels(), query,
            new PromRange(Start, End, TimeSpan.FromMinutes(1), [new PromSeries(Labels(), [])]), 24).State);
    }

    [Fact]
    public void The_sparkline_rises_with_a_rising_series_and_marks_gaps()
    {
        var rising = Enumerable.Range(0, 61).Select(i => new MetricPoint(Start.AddMinutes(i).ToUnixTimeMilliseconds(), i)).ToList();
        Assert.Equal("▁▁▂▂▂▃▃▃▄▄▄▄▅▅▅▆▆▆▆▇▇▇██", MetricContextBuilder.Sparkline(rising, Start, End, 24));

        var flat = rising.Select(p => p with { V = 3 }).ToList();
        Assert.Equal(new string('▄', 24), MetricContextBuilder.Sparkline(flat, Start, End, 24));

        // The first half missing: spaces; NaN only: a middle dot; +Inf the top block.
        var gappy = rising.Where(p => p.Time >= Start.AddMinutes(30)).Select(p => p.Time == Start.AddMinutes(45) ? p with { V = double.NaN } : p).ToList();
        var line = MetricContextBuilder.Sparkline(gappy, Start, End, 4);
        Assert.Equal(' ', line[0]);
        Assert.Equal(' ', line[1]);
        var spiky = new List<MetricPoint> { new(Start.ToUnixTimeMilliseconds(), 1), new(End.ToUnixTimeMilliseconds(), double.PositiveInfinity) };
        Assert.Equal('█', MetricContextBuilder.Sparkline(spiky, Start, End, 4)[^1]);
        var nan = new List<MetricPoint> { new(Start.ToUnixTimeMilliseconds(), 1), new(End.ToUnixTimeMilliseconds(), double.NaN) };
        Assert.Equal('·', MetricContextBuilder.Sparkline(nan, Start, End, 4)[^1]);
    }

    [Fact]
    public void A_slice_of_the_sparkline_shows_its_extreme_in_the_direction_the_rule_fires()
    {
        // One spike in a quiet hour: a '>' rule shows it even though the slice's last value is low.
        var points = Enumerable.Range(0, 61).Select(i => new MetricPoint(Start.AddMinutes(i).ToUnixTimeMilliseconds(), i == 31 ? 100 : 0)).ToList();

        Assert.Contains('█', MetricContextBuilder.Sparkline(points, Start, End, 12, ">"));
        Assert.DoesNotContain('█', MetricContextBuilder.Sparkline(points, Start, End, 12, "<"));
    }

    [Theory]
    [InlineData("NaN", double.NaN)]
    [InlineData("+Inf", double.PositiveInfinity)]
    [InlineData("-Inf", double.NegativeInfinity)]
    [InlineData("1e-9", 1e-9)]
    [InlineData("-3.5", -3.5)]
    public void Prometheus_sample_values_are_read_with_their_special_values(string text, double expected) =>
        Assert.Equal(expected, PrometheusQueryClient.ParseValue(text));
}
