namespace B25.Stack.Tests;

/// <summary>The metric-name extraction the contract check relies on.</summary>
public sealed class PromQlTests
{
    [Theory]
    [InlineData("up", new[] { "up" })]
    [InlineData("sum by (service) (rate(http_requests_total{status=~\"5..\"}[5m]))", new[] { "http_requests_total" })]
    [InlineData("histogram_quantile(0.95, sum without (instance) (rate(x_seconds_bucket[1m])))", new[] { "x_seconds_bucket" })]
    [InlineData("a / on (job, instance) group_left (version) b", new[] { "a", "b" })]
    [InlineData("a > bool 1 and ignoring (le) b offset 5m unless c @ end()", new[] { "a", "b", "c" })]
    [InlineData("max_over_time(rate(a_total[5m])[1h:1m]) * 1e-3 + 0x1F - Inf", new[] { "a_total" })]
    [InlineData("label_replace(up, \"svc\", \"$1\", \"job\", \"(by|sum)\")", new[] { "up" })]
    [InlineData("{__name__=\"node_load1\", instance=~\"a.*\"}", new[] { "node_load1" })]
    [InlineData("service:http_requests:rate5m{service=\"x\"} # a comment naming nothing_here", new[] { "service:http_requests:rate5m" })]
    [InlineData("sum(a) by (le) / count(b) without (le)", new[] { "a", "b" })]
    [InlineData("topk(5, sum by(symbol)(c_total))", new[] { "c_total" })]
    public void Metric_names_are_extracted_without_functions_keywords_labels_or_literals(string expr, string[] expected)
    {
        Assert.Equal(expected, PromQl.MetricNames(expr));
    }

    [Fact]
    public void Grafana_variables_become_plain_promql()
    {
        Assert.Equal(
            "rate(x{service=~\"grafana_variable\"}[1m]) / 15s * 3600 + y{a=\"grafana_variable\"}[1h]",
            PromQl.SubstituteGrafanaVariables("rate(x{service=~\"$service\"}[$__rate_interval]) / $__interval * $__range_s + y{a=\"${svc:regex}\"}[$__range]"));
    }
}

public sealed class PromtoolTests
{
    [Fact]
    public void Promtool_reports_a_broken_query_under_its_own_index()
    {
        var errors = Promtool.ParseErrors(["up", "sum(rate(x[5m])", "label_replace(up, \"a\", \"$1\", \"job\", \"(.*)\")", "foo{"]);
        Assert.Equal([1, 3], errors.Keys.Order());
        Assert.Contains("parse error", errors[1]);
    }
}
