using B25.Alerting.Enrichment;
using B25.Alerting.Enrichment.PromQl;

namespace B25.Alerting.Tests.Enrichment;

public sealed class PromQlExpressionTests
{
    [Theory]
    // Constant on the right: query the left side.
    [InlineData("account_monitor_drawdown_pct > 5", "account_monitor_drawdown_pct", ">", 5)]
    [InlineData("account_monitor_balance_usd < 1000", "account_monitor_balance_usd", "<", 1000)]
    [InlineData("x >= 0.5", "x", ">=", 0.5)]
    [InlineData("x <= -2", "x", "<=", -2)]
    [InlineData("strategy_engine_active_strategies == 0", "strategy_engine_active_strategies", "==", 0)]
    [InlineData("x != 1", "x", "!=", 1)]
    [InlineData("abs(account_monitor_position_size - account_monitor_exchange_position_size) > 1e-9",
        "abs(account_monitor_position_size - account_monitor_exchange_position_size)", ">", 1e-9)]
    [InlineData("x > (10)", "x", ">", 10)]
    [InlineData("x > 0x10", "x", ">", 16)]
    [InlineData("x>5", "x", ">", 5)]
    // The root comparison, not one inside brackets.
    [InlineData("abs(account_monitor_position_size) / (account_monitor_position_limit > 0) > 0.9",
        "abs(account_monitor_position_size) / (account_monitor_position_limit > 0)", ">", 0.9)]
    [InlineData("100 * min by (instance, mountpoint) (node_filesystem_avail_bytes{mountpoint=\"/\"} / node_filesystem_size_bytes{mountpoint=\"/\"}) < 10",
        "100 * min by (instance, mountpoint) (node_filesystem_avail_bytes{mountpoint=\"/\"} / node_filesystem_size_bytes{mountpoint=\"/\"})", "<", 10)]
    [InlineData("up{job=~\"market-data|order-execution\"} == 0", "up{job=~\"market-data|order-execution\"}", "==", 0)]
    [InlineData("rate(x{path=\"a>b\"}[5m]) > 3", "rate(x{path=\"a>b\"}[5m])", ">", 3)]
    [InlineData("time() - x > 10", "time() - x", ">", 10)]
    [InlineData("x > 5 # a comment > 7", "x", ">", 5)]
    // Constant on the left: read as "value <flipped op> constant".
    [InlineData("5 < x", "x", ">", 5)]
    [InlineData("1000 > account_monitor_balance_usd", "account_monitor_balance_usd", "<", 1000)]
    [InlineData("0.9 <= y", "y", ">=", 0.9)]
    [InlineData("3 == z", "z", "==", 3)]
    public void A_top_level_comparison_with_a_constant_gives_the_threshold_and_its_left_side(string expression, string queried, string op, double value)
    {
        var query = PromQlExpression.Analyse(expression);

        Assert.NotNull(query);
        Assert.Equal(queried, query.Queried);
        Assert.NotNull(query.Threshold);
        Assert.Equal(op, query.Threshold.Comparison);
        Assert.Equal(value, query.Threshold.Value, 12);
        Assert.Equal(expression, query.Expression);
    }

    [Theory]
    [InlineData("x > 0.05 * y")] // not a constant
    [InlineData("x > y")]
    [InlineData("x > bool 5")] // returns 0/1, filters nothing
    [InlineData("x > BOOL 5")]
    [InlineData("(time() - x > 10) and x > 0")] // and binds looser than >
    [InlineData("increase(a[10m]) > 0 or (b unless c)")]
    [InlineData("x > 5 unless y")]
    [InlineData("vector(1)")]
    [InlineData("absent(up{job=\"b25-alerting\"} == 1)")]
    [InlineData("histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))")]
    [InlineData("x > on(instance) 5")]
    [InlineData("sum(x) by (job) > ignoring(a) y")]
    public void An_expression_without_a_constant_top_level_threshold_is_queried_whole(string expression)
    {
        var query = PromQlExpression.Analyse(expression);

        Assert.NotNull(query);
        Assert.Null(query.Threshold);
        Assert.Equal(expression, query.Queried);
    }

    [Fact]
    public void Words_that_contain_and_or_unless_are_not_set_operators()
    {
        var query = PromQlExpression.Analyse("orders_total_unless_x{band=\"or\"} > 3");

        Assert.Equal(">", query!.Threshold!.Comparison);
        Assert.Equal("orders_total_unless_x{band=\"or\"}", query.Queried);
    }

    [Theory]
    [InlineData("x > 5 < 10", "x > 5", "<", 10)] // left-associative: (x > 5) < 10
    public void Comparisons_are_left_associative(string expression, string queried, string op, double value)
    {
        var query = PromQlExpression.Analyse(expression)!;
        Assert.Equal(queried, query.Queried);
        Assert.Equal(op, query.Threshold!.Comparison);
        Assert.Equal(value, query.Threshold.Value);
    }

    [Theory]
    [InlineData("rate(x[5m]")]
    [InlineData("x{a=\"b} > 1")]
    [InlineData("x = 5")]
    [InlineData(") x (")]
    [InlineData("> 5")]
    [InlineData("   ")]
    public void Text_that_cannot_be_PromQL_gives_no_query(string expression) =>
        Assert.Null(PromQlExpression.Analyse(expression));

    [Fact]
    public void The_expression_comes_from_g0_expr_of_the_generator_url()
    {
        const string url = "http://prometheus:9090/graph?g0.expr=market_data_websocket_connected+%3D%3D+0&g0.tab=1";

        Assert.Equal("market_data_websocket_connected == 0", PromQlExpression.FromGeneratorUrl(url));
        var query = PromQlExpression.FromAlert(url)!;
        Assert.Equal("market_data_websocket_connected", query.Queried);
        Assert.Equal(new MetricThreshold("==", 0), query.Threshold);
    }

    [Fact]
    public void A_generator_url_as_prometheus_writes_it_round_trips_every_character()
    {
        const string expression = "sum by (service) (rate(x{path=~\"/a|/b\", q=\"50%&+\"}[5m])) > 0.05";

        Assert.Equal(expression, PromQlExpression.FromGeneratorUrl(TestAlerts.GeneratorUrl(expression)));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("not a url")]
    [InlineData("http://prometheus:9090/graph")]
    [InlineData("http://prometheus:9090/graph?g0.tab=1")]
    [InlineData("http://prometheus:9090/graph?g0.expr=&g0.tab=1")]
    [InlineData("http://prometheus:9090/graph?g1.expr=up")]
    public void A_missing_or_garbled_generator_url_has_no_expression(string? url) =>
        Assert.Null(PromQlExpression.FromAlert(url));

    [Fact]
    public void An_undecodable_expression_is_not_sent()
    {
        // %28 decodes to "(" and nothing closes it.
        Assert.Null(PromQlExpression.FromAlert("http://prometheus:9090/graph?g0.expr=rate%28x%5B5m%5D+%3E+1"));
    }

    [Fact]
    public void Every_rule_of_the_repository_has_an_expression_that_is_read()
    {
        var expressions = RuleExpressions().ToList();
        Assert.True(expressions.Count >= 30, $"found {expressions.Count} rules");
        foreach (var (alert, expression) in expressions)
            Assert.True(PromQlExpression.Analyse(expression) is not null, $"{alert}: {expression}");

        // The rules whose threshold the messages show.
        var byName = expressions.ToDictionary(e => e.Alert, e => PromQlExpression.Analyse(e.Expression)!);
        Assert.Equal(new MetricThreshold(">", 5), byName["HighDrawdown"].Threshold);
        Assert.Equal(new MetricThreshold("<", 1000), byName["LowAccountBalance"].Threshold);
        Assert.Equal(new MetricThreshold(">", 100), byName["OrderExecutionBacklog"].Threshold);
        Assert.Equal("order_execution_queue_depth", byName["OrderExecutionBacklog"].Queried);
        Assert.Null(byName["OrderBookStale"].Threshold); // "... > 10) and ... > 0"
        Assert.Null(byName["Watchdog"].Threshold);
    }

    /// <summary>(alert, expr) of prometheus/alerts/*.yml, read with a small YAML reader good enough for these files.</summary>
    private static IEnumerable<(string Alert, string Expression)> RuleExpressions()
    {
        foreach (var file in Directory.GetFiles(Repo.PathOf("prometheus", "alerts"), "*.yml"))
        {
            var lines = File.ReadAllLines(file);
            for (var i = 0; i < lines.Length; i++)
            {
                var alert = lines[i].Trim();
                if (!alert.StartsWith("- alert:", StringComparison.Ordinal)) continue;
                var name = alert["- alert:".Length..].Trim();
                var j = i + 1;
                while (j < lines.Length && !lines[j].TrimStart().StartsWith("expr:", StringComparison.Ordinal)) j++;
                var first = lines[j].TrimStart()["expr:".Length..].Trim();
                string expression;
                if (first is "|" or ">" or "|-" or ">-")
                {
                    var indent = lines[j + 1].Length - lines[j + 1].TrimStart().Length;
                    var body = new List<string>();
                    for (var k = j + 1; k < lines.Length && (lines[k].Trim().Length == 0 || lines[k].Length - lines[k].TrimStart().Length >= indent); k++)
                        body.Add(lines[k].Trim());
                    expression = string.Join(first.StartsWith('>') ? " " : "\n", body).Trim();
                }
                else
                {
                    expression = first.Length > 1 && first[0] == '\'' && first[^1] == '\'' ? first[1..^1].Replace("''", "'") : first;
                }
                yield return (name, expression);
            }
        }
    }
}
