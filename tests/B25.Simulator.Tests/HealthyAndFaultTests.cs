using B25.Simulator.Faults;

namespace B25.Simulator.Tests;

/// <summary>
/// Healthy values stay on the quiet side of every threshold in prometheus/alerts/*.yml; each fault
/// moves the metric its alert watches across it. The end-to-end test proves the same against real
/// Prometheus; these are the fast, exact checks.
/// </summary>
public sealed class HealthyAndFaultTests
{
    [Fact]
    public async Task Ten_healthy_minutes_stay_under_every_alert_threshold()
    {
        var harness = new SimulationHarness();
        harness.Run(TimeSpan.FromSeconds(60));
        var start = new Dictionary<string, Exposition>();
        foreach (var service in harness.Services.All)
        {
            start[service.Name] = await harness.ScrapeAsync(service.Name);
        }

        harness.Run(TimeSpan.FromMinutes(10));

        foreach (var service in harness.Services.All)
        {
            var now = await harness.ScrapeAsync(service.Name);
            var requests = now.Sum("http_requests_total") - start[service.Name].Sum("http_requests_total");
            var errors = now.Sum("http_requests_total", s => s["status"]!.StartsWith('5')) - start[service.Name].Sum("http_requests_total", s => s["status"]!.StartsWith('5'));
            Assert.True(requests > 1000, $"{service.Name}: too little traffic ({requests})");
            Assert.True(errors / requests < 0.05, $"{service.Name}: HighErrorRate would fire ({errors / requests:P1})");
            Assert.True(now.Quantile("http_request_duration_seconds", 0.95, start[service.Name]) < 1, $"{service.Name}: SlowResponseTime would fire");
        }

        var market = await harness.ScrapeAsync("market-data");
        Assert.All(market.Named("market_data_websocket_connected"), s => Assert.Equal(1, s.Value));
        var nowUnix = new DateTimeOffset(2026, 11, 25, 12, 11, 0, TimeSpan.Zero).ToUnixTimeSeconds();
        Assert.All(market.Named("market_data_orderbook_last_update_timestamp_seconds"), s => Assert.InRange(nowUnix - s.Value, 0, 10));

        var orders = await harness.ScrapeAsync("order-execution");
        Assert.True(orders.Single("order_execution_queue_depth") <= 100);
        var rejected = orders.Sum("order_execution_orders_total", s => s["status"] == "rejected");
        Assert.True(rejected / orders.Sum("order_execution_submitted_orders_total") < 0.1, "HighOrderRejectionRate would fire");

        var strategy = await harness.ScrapeAsync("strategy-engine");
        Assert.True(strategy.Single("strategy_engine_active_strategies") > 0);

        var account = await harness.ScrapeAsync("account-monitor");
        Assert.True(account.Single("account_monitor_drawdown_pct") <= 5, "HighDrawdown would fire");
        Assert.All(account.Named("account_monitor_balance_usd"), s => Assert.True(s.Value >= 1000, "LowAccountBalance would fire"));
        foreach (var position in account.Named("account_monitor_position_size"))
        {
            var limit = account.Single("account_monitor_position_limit", ("exchange", position["exchange"]!), ("symbol", position["symbol"]!));
            Assert.True(Math.Abs(position.Value) / limit <= 0.9, "PositionSizeLimitApproaching would fire");
            Assert.Equal(position.Value, account.Single("account_monitor_exchange_position_size", ("exchange", position["exchange"]!), ("symbol", position["symbol"]!)));
        }

        Assert.True(account.Sum("account_monitor_winning_trades_total") / account.Sum("account_monitor_trades_total") >= 0.4, "LowWinRate would fire");
        Assert.True(account.Sum("account_monitor_maker_orders_total") / account.Sum("account_monitor_orders_total") >= 0.7, "LowMakerRatio would fire");

        var risk = await harness.ScrapeAsync("risk-manager");
        Assert.Equal(0, risk.Sum("risk_manager_limit_violations_total"));
        Assert.Equal(0, (await harness.ScrapeAsync("config-service")).Sum("config_service_config_changes_total"));
    }

    [Theory]
    [InlineData("market-data")]
    [InlineData("order-execution")]
    [InlineData("risk-manager")]
    [InlineData("dashboard-server")]
    public async Task Error_spike_pushes_the_5xx_share_over_5_percent_and_clears(string service)
    {
        var harness = new SimulationHarness();
        harness.Run(TimeSpan.FromSeconds(10));
        var before = await harness.ScrapeAsync(service);

        harness.Faults.Set(service, Fault.ErrorSpike, on: true);
        harness.Run(TimeSpan.FromSeconds(30));
        var during = await harness.ScrapeAsync(service);
        Assert.True(ErrorShare(during, before) > 0.2, $"error share {ErrorShare(during, before):P1}");

        harness.Faults.Set(service, Fault.ErrorSpike, on: false);
        harness.Run(TimeSpan.FromSeconds(60));
        Assert.True(ErrorShare(await harness.ScrapeAsync(service), during) < 0.05);
    }

    [Fact]
    public async Task Latency_spike_pushes_http_p95_over_one_second()
    {
        var harness = new SimulationHarness();
        harness.Run(TimeSpan.FromSeconds(10));
        var before = await harness.ScrapeAsync("order-execution");

        harness.Faults.Set("order-execution", Fault.LatencySpike, on: true);
        harness.Run(TimeSpan.FromSeconds(30));
        var during = await harness.ScrapeAsync("order-execution");

        Assert.True(during.Quantile("http_request_duration_seconds", 0.95, before) > 1);
        Assert.True(during.Quantile("order_execution_submission_latency_seconds", 0.95, before) > 0.1);
    }

    [Fact]
    public async Task Drawdown_raises_current_drawdown_over_5_percent_and_it_comes_back()
    {
        var harness = new SimulationHarness();
        harness.Faults.Set("account-monitor", Fault.Drawdown, on: true);
        harness.Run(TimeSpan.FromSeconds(5));
        var during = await harness.ScrapeAsync("account-monitor");
        Assert.True(during.Single("account_monitor_drawdown_pct") > 5);
        Assert.True(during.Sum("account_monitor_unrealized_pnl_usd") < 0);

        harness.Faults.Set("account-monitor", Fault.Drawdown, on: false);
        harness.Run(TimeSpan.FromSeconds(5));
        var after = await harness.ScrapeAsync("account-monitor");
        Assert.True(after.Single("account_monitor_drawdown_pct") < 5);
        Assert.True(after.Single("account_monitor_max_drawdown_pct") > 5, "max drawdown never decreases within the period");
    }

    [Fact]
    public async Task Websocket_disconnect_drops_the_feeds_stops_the_books_and_counts_the_reconnection()
    {
        var harness = new SimulationHarness();
        harness.Run(TimeSpan.FromSeconds(5));
        harness.Faults.Set("market-data", Fault.WebSocketDisconnect, on: true);
        harness.Run(TimeSpan.FromSeconds(20));
        var during = await harness.ScrapeAsync("market-data");
        Assert.Equal(0, during.Single("market_data_websocket_connected", ("exchange", "binance")));
        Assert.Equal(1, during.Single("market_data_websocket_connected", ("exchange", "okx")));
        var okxUpdate = during.Single("market_data_orderbook_last_update_timestamp_seconds", ("exchange", "okx"), ("symbol", "BTCUSDT"));
        var binanceUpdate = during.Single("market_data_orderbook_last_update_timestamp_seconds", ("exchange", "binance"), ("symbol", "BTCUSDT"));
        Assert.True(okxUpdate - binanceUpdate >= 19, "the disconnected book should be stale (OrderBookStale)");

        harness.Faults.Set("market-data", Fault.WebSocketDisconnect, on: false);
        harness.Run(TimeSpan.FromSeconds(2));
        var after = await harness.ScrapeAsync("market-data");
        Assert.Equal(1, after.Single("market_data_websocket_connected", ("exchange", "binance")));
        Assert.Equal(1, after.Single("market_data_reconnections_total", ("exchange", "binance")));
    }

    [Fact]
    public async Task Risk_violation_counts_violations_while_on_and_stops_counting_when_cleared()
    {
        var harness = new SimulationHarness();
        harness.Run(TimeSpan.FromSeconds(5));
        harness.Faults.Set("risk-manager", Fault.RiskViolation, on: true);
        harness.Run(TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(250));
        var first = await harness.ScrapeAsync("risk-manager");
        Assert.True(first.Single("risk_manager_limit_violations_total", ("limit_type", "position")) >= 1, "first tick must count a violation");
        Assert.True(first.Single("risk_manager_limit_utilization_ratio", ("limit_type", "position")) > 1);
        Assert.Equal(1, first.Single("risk_manager_emergency_stops_total", ("reason", "risk_limit")));

        harness.Faults.Set("risk-manager", Fault.RiskViolation, on: false);
        harness.Run(TimeSpan.FromSeconds(1));
        var cleared = await harness.ScrapeAsync("risk-manager");
        harness.Run(TimeSpan.FromSeconds(30));
        var later = await harness.ScrapeAsync("risk-manager");
        Assert.Equal(cleared.Sum("risk_manager_limit_violations_total"), later.Sum("risk_manager_limit_violations_total"));
        Assert.True(later.Single("risk_manager_limit_utilization_ratio", ("limit_type", "position")) < 1);
    }

    [Theory]
    [InlineData("risk-manager", "drawdown")]
    [InlineData("account-monitor", "risk-violation")]
    [InlineData("order-execution", "websocket-disconnect")]
    public void Domain_faults_belong_to_their_service(string service, string fault)
    {
        var harness = new SimulationHarness();
        Assert.True(FaultNames.TryParse(fault, out var parsed));
        Assert.False(harness[service].Supports(parsed));
        Assert.True(harness[service].Supports(Fault.ServiceDown));
    }

    private static double ErrorShare(Exposition now, Exposition before)
    {
        var total = now.Sum("http_requests_total") - before.Sum("http_requests_total");
        var errors = now.Sum("http_requests_total", s => s["status"]!.StartsWith('5')) - before.Sum("http_requests_total", s => s["status"]!.StartsWith('5'));
        return errors / total;
    }
}
