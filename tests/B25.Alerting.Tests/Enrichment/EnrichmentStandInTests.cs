using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Web;
using B25.Alerting.Enrichment;
using B25.Alerting.Enrichment.Logs;
using B25.Alerting.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;
using WireMock.Settings;

namespace B25.Alerting.Tests.Enrichment;

/// <summary>
/// Loki, and Prometheus misbehaving (slow, down), as stand-ins: Loki is not installable here, and a real
/// Prometheus cannot be made slow on purpose. The stand-ins answer the documented JSON of each API.
/// </summary>
[Collection(B25.Alerting.Tests.Observability.ProcessWideMetrics.Name)] // counts the enrichment failures exactly
public sealed class EnrichmentStandInTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 12, 1, 10, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset StartsAt = Now.AddMinutes(-3);

    private readonly WireMockServer _prometheus = WireMockServer.Start(new WireMockServerSettings { Urls = ["http://127.0.0.1:0"] });
    private readonly WireMockServer _loki = WireMockServer.Start(new WireMockServerSettings { Urls = ["http://127.0.0.1:0"] });
    private readonly ConcurrentQueue<System.Collections.Specialized.NameValueCollection> _lokiQueries = new();

    private readonly SilentHttpServer _silent = new();

    public void Dispose()
    {
        _prometheus.Stop();
        _loki.Stop();
        _silent.Dispose();
    }

    private static EnrichmentAlert Alert(string fingerprint, string service = "market-data", DateTimeOffset? startsAt = null) =>
        TestAlerts.Firing(fingerprint, "b25_test_queue_depth > 100", startsAt ?? StartsAt,
            ("alertname", "OrderBookStale"), ("service", service), ("symbol", fingerprint));

    private EnricherHost Host(string timeout = "00:00:05", bool prometheus = true, bool loki = true, bool grafana = true, TimeProvider? clock = null,
        string? prometheusUrl = null, string? lokiUrl = null) => new(new Dictionary<string, string?>
    {
        ["Prometheus:Url"] = prometheus ? prometheusUrl ?? _prometheus.Urls[0] : "",
        ["Loki:Url"] = loki ? lokiUrl ?? _loki.Urls[0] : "",
        ["Grafana:Url"] = grafana ? "http://grafana.example:3000" : "",
        ["Enrichment:Timeout"] = timeout,
    }, clock ?? new SettableClock(Now));

    /// <summary>A query_range answer: one series per symbol, a minute apart, ending at <see cref="Now"/>.</summary>
    private void PrometheusAnswers(TimeSpan? delay = null, params string[] symbols)
    {
        var result = new JsonArray();
        foreach (var symbol in symbols)
        {
            var values = new JsonArray();
            for (var i = 60; i >= 0; i--)
                values.Add(new JsonArray(Now.AddMinutes(-i).ToUnixTimeSeconds(), (200 - i).ToString()));
            result.Add(new JsonObject { ["metric"] = new JsonObject { ["__name__"] = "b25_test_queue_depth", ["symbol"] = symbol }, ["values"] = values });
        }
        var body = new JsonObject { ["status"] = "success", ["data"] = new JsonObject { ["resultType"] = "matrix", ["result"] = result } }.ToJsonString();
        var response = Response.Create().WithStatusCode(200).WithHeader("Content-Type", "application/json").WithBody(body);
        if (delay is { } d) response = response.WithDelay(d);
        _prometheus.Given(Request.Create().WithPath("/api/v1/query_range").UsingPost()).RespondWith(response);
    }

    /// <summary>
    /// Loki's documented query_range answer for a log query (resultType streams; values [ns as a string, line],
    /// newest first for direction=backward): one stream per level.
    /// </summary>
    private void LokiAnswers(Func<System.Collections.Specialized.NameValueCollection, JsonArray> streams)
    {
        var response = Response.Create().WithCallback(request =>
            {
                var query = HttpUtility.ParseQueryString(new Uri(request.AbsoluteUrl).Query);
                _lokiQueries.Enqueue(query);
                var body = new JsonObject
                {
                    ["status"] = "success",
                    ["data"] = new JsonObject { ["resultType"] = "streams", ["result"] = streams(query), ["stats"] = new JsonObject() },
                };
                return StandInResponse.Json(200, body.ToJsonString());
            });
        _loki.Given(Request.Create().WithPath("/loki/api/v1/query_range").UsingGet()).RespondWith(response);
    }

    private static JsonObject Stream(string service, string level, params (DateTimeOffset Time, string Line)[] lines)
    {
        var values = new JsonArray();
        foreach (var (time, line) in lines.OrderByDescending(l => l.Time))
            values.Add(new JsonArray(LokiQueryClient.UnixNanos(time), line));
        return new JsonObject
        {
            ["stream"] = new JsonObject { ["service_name"] = service, ["level"] = level, ["environment"] = "production", ["container_name"] = $"b25-{service}-1" },
            ["values"] = values,
        };
    }

    [Fact]
    public async Task A_slow_prometheus_is_cut_at_the_timeout_and_what_finished_is_kept()
    {
        LokiAnswers(_ => [Stream("market-data", "error", (StartsAt.AddSeconds(-5), "feed lost"))]);
        await WarmUpAsync();
        using var host = Host(timeout: "00:00:01", prometheusUrl: _silent.Url);
        var failuresBefore = EnrichmentMetrics.Failures.WithLabels("prometheus", "timeout").Value;

        var clock = Stopwatch.StartNew();
        var enrichment = await host.Enricher.EnrichAsync(TestAlerts.Incident(Alert("a")), CancellationToken.None);
        clock.Stop();

        // At the timeout, not whenever Prometheus would answer (the margin is for a loaded 2-core machine).
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(950), TimeSpan.FromMilliseconds(1000 + 2000));
        Assert.Equal(SourceState.Timeout, enrichment.Sources.Prometheus.State);
        Assert.Contains("1000 ms", enrichment.Sources.Prometheus.Error);
        Assert.Equal(ContextState.Timeout, enrichment.MetricFor("a")!.State);
        Assert.Equal(new MetricThreshold(">", 100), enrichment.MetricFor("a")!.Threshold); // known without asking
        Assert.Equal(SourceState.Ok, enrichment.Sources.Loki.State);
        Assert.Equal("feed lost", Assert.Single(enrichment.LogsFor("market-data")!.Lines).Line);
        Assert.Equal("b25-market-data", enrichment.GrafanaFor(Alert("a").Labels)!.DashboardUid);
        Assert.Equal(failuresBefore + 1, EnrichmentMetrics.Failures.WithLabels("prometheus", "timeout").Value);
        Assert.Equal(1, _silent.Requests);
    }

    [Fact]
    public async Task A_prometheus_that_did_not_answer_is_not_asked_again_for_a_moment()
    {
        await WarmUpAsync();
        using var host = Host(timeout: "00:00:01", prometheusUrl: _silent.Url);
        await host.Enricher.EnrichAsync(TestAlerts.Incident(Alert("a")), CancellationToken.None);
        Assert.Equal(1, _silent.Requests);

        // The next incident of the storm (another expression: no cached answer to share) does not wait on it again.
        var clock = Stopwatch.StartNew();
        var next = await host.Enricher.EnrichAsync(TestAlerts.Incident("incident-2",
            [TestAlerts.Firing("b", "b25_other_depth > 5", StartsAt, ("service", "market-data"))]), CancellationToken.None);
        clock.Stop();

        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(500), $"waited {clock.Elapsed}");
        Assert.Equal(1, _silent.Requests);
        Assert.Equal(SourceState.Error, next.Sources.Prometheus.State);
        Assert.Contains("Prometheus was unreachable moments ago", next.MetricFor("b")!.Reason);
    }

    /// <summary>The stand-ins' first answer can take seconds on a busy machine (JIT): get it out of the way.</summary>
    private async Task WarmUpAsync()
    {
        using var http = new HttpClient();
        await http.GetAsync($"{_loki.Urls[0]}/loki/api/v1/query_range?query=%7B%7D");
        _lokiQueries.Clear();
    }

    [Fact]
    public async Task A_slow_loki_is_cut_at_the_timeout_too()
    {
        PrometheusAnswers(null, "a");
        using var host = Host(timeout: "00:00:01", lokiUrl: _silent.Url);

        var clock = Stopwatch.StartNew();
        var enrichment = await host.Enricher.EnrichAsync(TestAlerts.Incident(Alert("a")), CancellationToken.None);

        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(1000 + 2000), $"took {clock.Elapsed}");
        Assert.Equal(SourceState.Timeout, enrichment.Sources.Loki.State);
        Assert.Equal(ContextState.Timeout, enrichment.LogsFor("market-data")!.State);
        Assert.Equal(SourceState.Ok, enrichment.Sources.Prometheus.State);
        Assert.Equal(200, enrichment.MetricFor("a")!.Current);
    }

    [Fact]
    public async Task A_loki_that_did_not_answer_is_not_asked_again_for_a_moment()
    {
        PrometheusAnswers(null, "a");
        using var host = Host(timeout: "00:00:01", lokiUrl: _silent.Url);
        var first = await host.Enricher.EnrichAsync(TestAlerts.Incident(Alert("a")), CancellationToken.None);
        Assert.Equal(SourceState.Timeout, first.Sources.Loki.State);
        Assert.Equal(1, _silent.Requests);

        // The next incident of the storm (another service: no cached answer to share) does not wait on Loki again.
        var clock = Stopwatch.StartNew();
        var next = await host.Enricher.EnrichAsync(TestAlerts.Incident("incident-2", [Alert("a", service: "order-execution")]), CancellationToken.None);
        clock.Stop();

        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(500), $"waited {clock.Elapsed}");
        Assert.Equal(1, _silent.Requests);
        Assert.Equal(SourceState.Error, next.Sources.Loki.State);
        Assert.Contains("Loki was unreachable moments ago", next.LogsFor("order-execution")!.Reason);
    }

    [Fact]
    public async Task Prometheus_down_gives_links_only_at_once_and_says_why()
    {
        var closedPort = ServiceProcess.FreePort(); // nothing listens there: connection refused
        using var host = Host(timeout: "00:00:30", loki: false, prometheusUrl: $"http://127.0.0.1:{closedPort}");
        var failuresBefore = EnrichmentMetrics.Failures.WithLabels("prometheus", "unreachable").Value;

        var clock = Stopwatch.StartNew();
        var enrichment = await host.Enricher.EnrichAsync(TestAlerts.Incident(Alert("a"), Alert("b")), CancellationToken.None);

        // An error, not a timeout: the refusal ends the wait, far before Enrichment:Timeout.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"a refused connection took {clock.Elapsed}");
        Assert.Equal(SourceState.Error, enrichment.Sources.Prometheus.State);
        Assert.Contains("refused", enrichment.Sources.Prometheus.Error, StringComparison.OrdinalIgnoreCase);
        Assert.All(["a", "b"], fp => Assert.Equal(ContextState.Error, enrichment.MetricFor(fp)!.State));
        Assert.Equal(1, enrichment.Sources.Prometheus.Queries); // both alerts share the expression
        Assert.NotNull(enrichment.GrafanaFor(Alert("a").Labels));
        Assert.Equal(failuresBefore + 1, EnrichmentMetrics.Failures.WithLabels("prometheus", "unreachable").Value);

        // A failure is not cached: the next revision asks again.
        var again = await host.Enricher.EnrichAsync(TestAlerts.Incident(Alert("a")), CancellationToken.None);
        Assert.Equal(1, again.Sources.Prometheus.Queries);
    }

    [Fact]
    public async Task Prometheus_failing_with_503_is_an_error_of_the_source()
    {
        _prometheus.Given(Request.Create().WithPath("/api/v1/query_range").UsingPost())
            .RespondWith(Response.Create().WithStatusCode(503).WithBody("Service Unavailable"));
        using var host = Host(loki: false);

        var enrichment = await host.Enricher.EnrichAsync(TestAlerts.Incident(Alert("a")), CancellationToken.None);

        Assert.Equal(SourceState.Error, enrichment.Sources.Prometheus.State);
        Assert.Contains("503", enrichment.Sources.Prometheus.Error);
        Assert.Equal(ContextState.Error, enrichment.MetricFor("a")!.State);
    }

    [Fact]
    public async Task Loki_is_asked_for_the_services_warn_and_error_streams_around_startsAt_and_its_answer_is_read_newest_first()
    {
        var longLine = new string('x', 298) + "🚨 and the rest of a very long stack trace";
        LokiAnswers(_ =>
        [
            Stream("market-data", "error",
                (StartsAt.AddSeconds(-10), "{\"level\":\"error\",\"msg\":\"websocket closed by exchange\"}\n"),
                (StartsAt.AddSeconds(-70), "error two"),
                (StartsAt.AddSeconds(-200), "error three")),
            Stream("market-data", "warn",
                (StartsAt.AddSeconds(-5), longLine),
                (StartsAt.AddSeconds(-40), "warn two"),
                (StartsAt.AddSeconds(-100), "warn three"),
                (StartsAt.AddSeconds(-250), "warn four")),
        ]);
        using var host = Host(prometheus: false);

        var enrichment = await host.Enricher.EnrichAsync(TestAlerts.Incident(Alert("a"), Alert("b", startsAt: StartsAt.AddSeconds(30))), CancellationToken.None);

        var query = Assert.Single(_lokiQueries);
        Assert.Equal("{service_name=\"market-data\", level=~\"warn|error|fatal\"}", query["query"]);
        Assert.Equal(LokiQueryClient.UnixNanos(StartsAt.AddMinutes(-5)), query["start"]); // the earliest start - 5 min
        Assert.Equal(LokiQueryClient.UnixNanos(StartsAt.AddSeconds(30).AddMinutes(1)), query["end"]); // the latest start + 1 min
        Assert.Equal("5", query["limit"]);
        Assert.Equal("backward", query["direction"]);

        Assert.Equal(SourceState.Ok, enrichment.Sources.Loki.State);
        var logs = enrichment.LogsFor("market-data")!;
        Assert.Equal(ContextState.Ok, logs.State);
        Assert.Equal(query["query"], logs.Query);
        Assert.Equal(5, logs.Lines.Count);
        Assert.Equal(logs.Lines.OrderByDescending(l => l.Time).ToList(), logs.Lines); // newest first, across streams
        Assert.Equal(StartsAt.AddSeconds(-5), logs.Lines[0].Time);
        Assert.Equal("warn", logs.Lines[0].Level);
        Assert.True(logs.Lines[0].Truncated);
        Assert.Equal(299, logs.Lines[0].Line.Length); // the emoji's surrogate pair is not split: cut before it
        Assert.EndsWith("x…", logs.Lines[0].Line);
        Assert.Equal("{\"level\":\"error\",\"msg\":\"websocket closed by exchange\"}", logs.Lines[1].Line); // no trailing newline
        Assert.Equal("error", logs.Lines[1].Level);
        Assert.Equal(["warn two", "error two", "warn three"], logs.Lines.Skip(2).Select(l => l.Line));
        Assert.Equal(SourceState.Disabled, enrichment.Sources.Prometheus.State);
        Assert.Equal(ContextState.Disabled, enrichment.MetricFor("a")!.State);
    }

    [Fact]
    public async Task Loki_with_nothing_to_say_is_no_data_and_a_bad_query_answer_is_an_error()
    {
        LokiAnswers(_ => []);
        using (var host = Host(prometheus: false))
        {
            var logs = (await host.Enricher.EnrichAsync(TestAlerts.Incident(Alert("a")), CancellationToken.None)).LogsFor("market-data")!;
            Assert.Equal(ContextState.NoData, logs.State);
            Assert.Empty(logs.Lines);
        }

        _loki.Reset();
        _loki.Given(Request.Create().WithPath("/loki/api/v1/query_range").UsingGet())
            .RespondWith(Response.Create().WithStatusCode(400).WithBody("parse error at line 1, col 1: syntax error: unexpected IDENTIFIER"));
        using (var host = Host(prometheus: false))
        {
            var enrichment = await host.Enricher.EnrichAsync(TestAlerts.Incident(Alert("a")), CancellationToken.None);
            Assert.Equal(SourceState.Error, enrichment.Sources.Loki.State);
            Assert.Contains("parse error", enrichment.LogsFor("market-data")!.Reason);
        }
    }

    [Fact]
    public async Task Loki_is_asked_once_per_service_up_to_the_cap_and_service_values_are_escaped()
    {
        LokiAnswers(q => [Stream("x", "error", (StartsAt, $"line of {q["query"]}"))]);
        using var host = Host(prometheus: false);
        var alerts = new[] { Alert("a", "svc-1"), Alert("b", "svc-1"), Alert("c", "svc-2"), Alert("d", "svc-\"3\\"), Alert("e", "svc-4") };

        var enrichment = await host.Enricher.EnrichAsync(TestAlerts.Incident(alerts), CancellationToken.None);

        Assert.Equal(3, _lokiQueries.Count);
        Assert.Equal(3, enrichment.Sources.Loki.Queries);
        Assert.Equal(1, enrichment.Sources.Loki.Skipped);
        Assert.Contains(_lokiQueries, q => q["query"] == "{service_name=\"svc-1\", level=~\"warn|error|fatal\"}");
        Assert.Contains(_lokiQueries, q => q["query"] == "{service_name=\"svc-\\\"3\\\\\", level=~\"warn|error|fatal\"}");
        // The service with the most alerts first, then in order: the last one is left out.
        Assert.Equal(ContextState.Skipped, enrichment.LogsFor("svc-4")!.State);
        Assert.Contains("MaxLokiQueries", enrichment.LogsFor("svc-4")!.Reason);
        Assert.Equal(ContextState.Ok, enrichment.LogsFor("svc-1")!.State);
    }

    [Fact]
    public async Task Loki_answers_are_reused_by_the_next_revision()
    {
        LokiAnswers(_ => [Stream("market-data", "error", (StartsAt, "boom"))]);
        var clock = new SettableClock(Now);
        using var host = Host(prometheus: false, clock: clock);

        await host.Enricher.EnrichAsync(TestAlerts.Incident(Alert("a")), CancellationToken.None);
        clock.Advance(TimeSpan.FromSeconds(3)); // same 10 s "now" bucket
        var again = await host.Enricher.EnrichAsync(TestAlerts.Incident(Alert("a")), CancellationToken.None);

        Assert.Single(_lokiQueries);
        Assert.Equal(1, again.Sources.Loki.CacheHits);
        Assert.Equal("boom", again.LogsFor("market-data")!.Lines[0].Line);
    }

    [Fact]
    public async Task Concurrent_incidents_with_the_same_expression_share_one_query_in_flight()
    {
        PrometheusAnswers(TimeSpan.FromMilliseconds(300), "a", "b", "c");
        using var host = Host(loki: false);

        var results = await Task.WhenAll(new[] { "a", "b", "c" }.Select(s =>
            host.Enricher.EnrichAsync(TestAlerts.Incident($"incident-{s}", [Alert(s)]), CancellationToken.None)));

        Assert.Single(_prometheus.LogEntries);
        Assert.Equal(1, results.Sum(r => r.Sources.Prometheus.Queries));
        Assert.Equal(2, results.Sum(r => r.Sources.Prometheus.CacheHits));
        Assert.All(results, r => Assert.Equal(200, r.Metrics.Values.Single().Current));
    }

    [Fact]
    public async Task With_no_urls_every_source_is_disabled_and_nothing_is_called()
    {
        using var host = Host(prometheus: false, loki: false, grafana: false);

        var enrichment = await host.Enricher.EnrichAsync(TestAlerts.Incident(Alert("a")), CancellationToken.None);

        Assert.Equal(new EnrichmentSources(SourceStatus.Disabled, SourceStatus.Disabled, SourceStatus.Disabled), enrichment.Sources);
        Assert.Empty(_prometheus.LogEntries);
        Assert.Empty(_loki.LogEntries);
        Assert.Empty(enrichment.Logs);
        Assert.Empty(enrichment.Grafana);
        Assert.Equal(ContextState.Disabled, enrichment.MetricFor("a")!.State);
    }

    [Fact]
    public async Task The_callers_cancellation_is_not_a_timeout()
    {
        using var host = Host(loki: false, prometheusUrl: _silent.Url);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => host.Enricher.EnrichAsync(TestAlerts.Incident(Alert("a")), cancel.Token));
    }

    [Fact]
    public async Task Alerts_past_the_per_incident_limit_get_no_context_and_say_so()
    {
        PrometheusAnswers(null, "a", "b", "c");
        using var host = new EnricherHost(new Dictionary<string, string?>
        {
            ["Prometheus:Url"] = _prometheus.Urls[0],
            ["Enrichment:MaxAlerts"] = "2",
        }, new SettableClock(Now));
        var resolved = Alert("a") with { Status = "resolved", EndsAt = Now };

        var enrichment = await host.Enricher.EnrichAsync(TestAlerts.Incident(resolved, Alert("b"), Alert("c")), CancellationToken.None);

        // Firing alerts come first.
        Assert.Equal(ContextState.Ok, enrichment.MetricFor("b")!.State);
        Assert.Equal(ContextState.Ok, enrichment.MetricFor("c")!.State);
        Assert.Equal(ContextState.Skipped, enrichment.MetricFor("a")!.State);
        Assert.Contains("MaxAlerts", enrichment.MetricFor("a")!.Reason);
    }

    [Theory]
    [InlineData("Prometheus:Url", "not a url")]
    [InlineData("Loki:Url", "ftp://loki")]
    [InlineData("Grafana:Url", "grafana:3000")]
    [InlineData("Enrichment:Timeout", "00:05:00")]
    [InlineData("Enrichment:MaxPrometheusQueries", "-1")]
    [InlineData("Loki:ServiceLabel", "service name")]
    [InlineData("Loki:Levels:0", "warn|info")]
    public void A_bad_setting_is_refused_with_its_name(string key, string value)
    {
        using var host = new EnricherHost(new Dictionary<string, string?> { [key] = value }, TimeProvider.System);

        var error = Assert.Throws<OptionsValidationException>(() => host.Get<IncidentEnricher>());
        Assert.Contains(key.Split(':')[1], error.Message);
    }
}

public sealed class EnrichmentSettingsTests
{
    [Fact]
    public async Task The_shipped_settings_are_valid_and_leave_every_source_off_until_its_url_is_set()
    {
        var settings = new ConfigurationBuilder()
            .AddJsonFile(Repo.PathOf("src", "B25.Alerting", "appsettings.json")).Build()
            .AsEnumerable().ToDictionary(kv => kv.Key, kv => kv.Value);
        using var host = new EnricherHost(settings, TimeProvider.System);

        var options = host.Get<IOptions<EnrichmentOptions>>().Value;
        Assert.Equal(TimeSpan.FromSeconds(1), options.Timeout);
        Assert.Equal(TimeSpan.FromHours(1), options.Window);
        Assert.Equal(["warn", "error", "fatal"], host.Get<IOptions<LokiOptions>>().Value.EffectiveLevels);
        var enrichment = await host.Enricher.EnrichAsync(TestAlerts.Incident(TestAlerts.Firing("a", "x > 1", DateTimeOffset.UtcNow, ("service", "market-data"))),
            CancellationToken.None);
        Assert.Equal(new EnrichmentSources(SourceStatus.Disabled, SourceStatus.Disabled, SourceStatus.Disabled), enrichment.Sources);
    }

    [Fact]
    public void Configured_levels_and_labels_replace_the_defaults_in_the_LogQL()
    {
        using var host = new EnricherHost(new Dictionary<string, string?>
        {
            ["Loki:Levels:0"] = "error",
            ["Loki:Levels:1"] = "fatal",
            ["Loki:ServiceLabel"] = "app",
        }, TimeProvider.System);

        Assert.Equal("{app=\"market-data\", level=~\"error|fatal\"}", LogQl.ForService("market-data", host.Get<IOptions<LokiOptions>>().Value));
    }
}
