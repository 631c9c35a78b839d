using B25.Alerting.Delivery;
using B25.Alerting.Delivery.Presentation;
using B25.Alerting.Enrichment;
using B25.Alerting.Hosting;
using B25.Alerting.Runbooks;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace B25.Alerting.Tests.Presentation;

/// <summary>
/// One presentation for every channel, tried with what a new user saw: OrderBookStale for three symbols,
/// each alert carrying nine operational labels, where the label that matters (symbol) was buried.
/// </summary>
public sealed class IncidentPresenterTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 2, 3, 12, 0, TimeSpan.Zero);

    [Fact]
    public void The_first_line_names_the_alert_what_tells_the_alerts_apart_and_the_current_value()
    {
        var incident = OrderBookStale("BTCUSDT", "ETHUSDT", "SOLUSDT") with
        {
            Enrichment = Enriched(("fp-BTCUSDT", 12.5), ("fp-ETHUSDT", 31.0), ("fp-SOLUSDT", 8.0)),
        };

        var p = Presenter().Present(incident);

        Assert.Equal("OrderBookStale market-data (symbol BTCUSDT, ETHUSDT, SOLUSDT) · ETHUSDT now 31 (fires > 5)", p.Headline);
        Assert.Equal(["OrderBookStale symbol=BTCUSDT", "OrderBookStale symbol=ETHUSDT", "OrderBookStale symbol=SOLUSDT"],
            p.Alerts.Select(a => a.DisplayName));
        Assert.All(p.Alerts, a => Assert.Equal(["symbol"], a.Labels.Select(l => l.Key)));
        // Shared labels once, operational ones (cluster, environment, job, tier) not at all.
        Assert.Equal(["exchange"], p.CommonLabels.Select(l => l.Key));
        Assert.Contains("▁", p.ValueLine);
        Assert.Equal("31 (fires > 5)", p.CurrentValue);
    }

    [Fact]
    public void A_single_alert_is_named_by_its_own_labels_outside_the_group()
    {
        var p = Presenter().Present(OrderBookStale("BTCUSDT"));

        Assert.Equal("OrderBookStale market-data exchange=binance symbol=BTCUSDT", p.Headline);
    }

    [Fact]
    public void Durations_come_from_startsAt_and_endsAt_not_from_when_the_service_heard_of_them()
    {
        var started = Now.AddMinutes(-25);
        var incident = OrderBookStale("BTCUSDT", "ETHUSDT") with
        {
            State = "closed",
            OpenedAt = Now.AddMinutes(-1), // received late
            ClosedAt = Now,
            FiringCount = 0,
            ResolvedCount = 2,
        };
        incident = incident with
        {
            Alerts = incident.Alerts.Select((a, i) => a with
            {
                Status = "resolved", StartsAt = started.AddMinutes(i).ToString("O"), EndsAt = started.AddMinutes(10 + i).ToString("O"),
            }).ToList(),
        };

        var p = Presenter().Present(incident);

        Assert.Equal("resolved after 11m", p.Duration);
        Assert.Equal(["lasted 10m", "lasted 10m"], p.Alerts.Select(a => a.Duration));
        Assert.Equal(started, p.StartedAt);
    }

    [Fact]
    public void Links_lead_to_the_runbook_the_alertmanager_group_and_a_prefilled_silence()
    {
        var p = Presenter(publicUrl: "https://alerting.b25.test").Present(OrderBookStale("BTCUSDT", "ETHUSDT"));

        var links = p.Links.ToDictionary(l => l.Text, l => l.Url);
        Assert.Equal("https://alerting.b25.test/runbooks/OrderBookStale", links["Runbook"]);
        var filter = Uri.EscapeDataString("{alertname=\"OrderBookStale\",service=\"market-data\"}");
        Assert.Equal($"http://alertmanager.test:9093/#/alerts?filter={filter}", links["Alertmanager"]);
        Assert.Equal($"http://alertmanager.test:9093/#/silences/new?filter={filter}", links["Silence"]);
        Assert.StartsWith("http://prometheus.test/graph?g0.expr=", links["Prometheus"]);
        // The same runbook on every alert is linked once, on the incident.
        Assert.All(p.Alerts, a => Assert.DoesNotContain(a.Links, l => l.Text == "Runbook"));
    }

    [Fact]
    public void Matchers_escape_quotes_and_backslashes_as_Alertmanager_reads_them() =>
        Assert.Equal("{a=\"x\\\"y\",b=\"c\\\\d\"}", IncidentPresenter.Matchers(new Dictionary<string, string> { ["b"] = "c\\d", ["a"] = "x\"y" }));

    [Fact]
    public void A_link_with_another_scheme_never_reaches_a_message()
    {
        var incident = OrderBookStale("BTCUSDT") with { ExternalUrl = "javascript:alert(1)" };
        incident = incident with { Alerts = [incident.Alerts[0] with { GeneratorUrl = "data:text/html,x" }] };

        var p = Presenter().Present(incident);

        Assert.DoesNotContain(p.Links, l => l.Url.StartsWith("javascript", StringComparison.Ordinal) || l.Url.StartsWith("data", StringComparison.Ordinal));
    }

    [Fact]
    public void Hidden_labels_are_a_setting()
    {
        var presenter = Presenter(hidden: "exchange");
        var p = presenter.Present(OrderBookStale("BTCUSDT"));
        Assert.DoesNotContain("exchange", p.Headline);
        Assert.Contains("job=market-data", p.Headline);
    }

    [Fact]
    public void The_count_of_alerts_Alertmanager_left_out_is_kept() =>
        Assert.Equal(7, Presenter().Present(OrderBookStale("BTCUSDT") with { TruncatedAlerts = 7 }).TruncatedAlerts);

    [Fact]
    public void A_source_that_timed_out_is_said_on_the_page()
    {
        var enrichment = Enriched(("fp-BTCUSDT", 1)) with
        {
            Sources = new EnrichmentSources(new SourceStatus(SourceState.Timeout), SourceStatus.Disabled, SourceStatus.Disabled),
        };
        var p = Presenter().Present(OrderBookStale("BTCUSDT") with { Enrichment = enrichment });
        Assert.Equal("Live context missing: Prometheus did not answer in time.", p.ContextNote);
    }

    [Fact]
    public void PagerDuty_says_the_same_first_line_with_the_same_links()
    {
        var incident = OrderBookStale("BTCUSDT", "ETHUSDT") with { Enrichment = Enriched(("fp-BTCUSDT", 12.5), ("fp-ETHUSDT", 7)) };
        var p = Presenter(publicUrl: "https://alerting.b25.test").Present(incident);

        var evt = System.Text.Json.Nodes.JsonNode.Parse(B25.Alerting.Delivery.PagerDuty.PagerDutyEvents.Trigger(incident, "KEY", "b25-x",
            new B25.Alerting.Delivery.PagerDuty.PagerDutyOptions(), presentation: p))!;

        Assert.Equal("[FIRING:2] " + p.Headline, evt["payload"]!["summary"]!.GetValue<string>());
        var hrefs = evt["links"]!.AsArray().Select(l => l!["text"]!.GetValue<string>()).ToList();
        Assert.Equal(["Runbook", "Prometheus", "Alertmanager", "Silence"], hrefs.Take(4));
        Assert.Contains("now 12.5", evt["payload"]!["custom_details"]!["value"]!.GetValue<string>());
    }

    internal static IncidentPresenter Presenter(string? publicUrl = null, string? hidden = null)
    {
        var links = new PublicLinks(Options.Create(new ServiceOptions { PublicUrl = publicUrl }), NullLogger<PublicLinks>.Instance);
        var folder = Path.Combine(AppContext.BaseDirectory, "runbooks");
        var runbooks = new RunbookLibrary(Options.Create(new RunbookOptions { Path = folder }), links, NullLogger<RunbookLibrary>.Instance);
        var options = new PresentationOptions();
        if (hidden is not null) options.HiddenLabels = hidden;
        return new IncidentPresenter(Options.Create(options), runbooks, links, new FakeTimeProvider(Now));
    }

    internal static IncidentView OrderBookStale(params string[] symbols)
    {
        var group = new Dictionary<string, string> { ["alertname"] = "OrderBookStale", ["service"] = "market-data" };
        var common = new Dictionary<string, string>
        {
            ["alertname"] = "OrderBookStale", ["service"] = "market-data", ["severity"] = "critical", ["cluster"] = "b25", ["environment"] = "prod",
            ["job"] = "market-data", ["tier"] = "trading", ["exchange"] = "binance",
        };
        if (symbols.Length == 1) common["symbol"] = symbols[0];
        var annotations = new Dictionary<string, string> { ["summary"] = "Order book stale", ["runbook_url"] = "/runbooks/OrderBookStale" };
        var alerts = symbols.Select(s => new AlertView($"fp-{s}", Now.AddMinutes(-12).ToString("O"), "firing", null,
            new Dictionary<string, string>(common) { ["symbol"] = s, ["instance"] = "market-data:9090" }, annotations,
            "http://prometheus.test/graph?g0.expr=order_book_age_seconds+%3E+5")).ToList();
        return new IncidentView("inc-1", "b25-critical", "{}:{alertname=\"OrderBookStale\"}", "open", 3, Now.AddMinutes(-11), null,
            group, common, annotations, "http://alertmanager.test:9093", symbols.Length, 0, alerts);
    }

    internal static IncidentEnrichment Enriched(params (string Fingerprint, double Current)[] values) => new(
        "inc-1", Now, 12, new EnrichmentSources(SourceStatus.Disabled with { State = SourceState.Ok }, SourceStatus.Disabled, SourceStatus.Disabled),
        values.ToDictionary(v => v.Fingerprint, v => new AlertMetricContext(v.Fingerprint, "OrderBookStale",
            new Dictionary<string, string> { ["symbol"] = v.Fingerprint[3..] }, Now.AddMinutes(-12), ContextState.Ok,
            Expression: "order_book_age_seconds > 5", QueriedExpression: "order_book_age_seconds", Threshold: new MetricThreshold(">", 5),
            WindowStart: Now.AddHours(-1), WindowEnd: Now, Current: v.Current, CurrentAt: Now, Min: 0.5, Max: v.Current, Sparkline: "▁▁▂▅█",
            Points: [new MetricPoint(Now.AddMinutes(-2).ToUnixTimeMilliseconds(), 1), new MetricPoint(Now.ToUnixTimeMilliseconds(), v.Current)])),
        new Dictionary<string, ServiceLogs>(), new Dictionary<string, GrafanaLink>());
}

public sealed class DurationWordingTests
{
    [Theory]
    [InlineData(45, "45s")]
    [InlineData(12 * 60, "12m")]
    [InlineData(12 * 60 + 5, "12m 5s")]
    [InlineData(3 * 3600 + 7 * 60, "3h 7m")]
    [InlineData(2 * 86400 + 3 * 3600, "2d 3h")]
    [InlineData(3600, "1h")]
    [InlineData(-5, "0s")]
    public void Durations_read_like_a_person_would_say_them(int seconds, string expected) =>
        Assert.Equal(expected, IncidentPresenter.Span(TimeSpan.FromSeconds(seconds)));
}
