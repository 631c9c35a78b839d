using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using B25.Alerting.Delivery.PagerDuty;
using B25.Alerting.Tests.Support;
using Microsoft.Extensions.Time.Testing;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.PagerDuty;

/// <summary>The PagerDuty channel through the real API: one PagerDuty alert per incident, on the group's dedup_key.</summary>
public sealed class PagerDutyDeliveryTests : IDisposable
{
    public const string RoutingKey = "R0UT1NGKEYDEFAULT00000000000001";
    private readonly SlackStandIn _slack = new();
    private readonly PagerDutyStandIn _pagerDuty = new();
    private AlertingFactory? _factory;
    private HttpClient? _client;

    public void Dispose()
    {
        _client?.Dispose();
        _factory?.Dispose();
        _pagerDuty.Dispose();
        _slack.Dispose();
    }

    private HttpClient Start(Dictionary<string, string?>? extra = null, bool pagerDuty = true, TimeProvider? time = null)
    {
        var settings = new Dictionary<string, string?>();
        if (pagerDuty)
        {
            settings["PagerDuty:RoutingKey"] = RoutingKey;
            settings["PagerDuty:EventsUrl"] = _pagerDuty.EventsUrl;
            settings["PagerDuty:RetryDelay"] = "00:00:01";
        }
        foreach (var (k, v) in extra ?? []) settings[k] = v;
        _factory = new AlertingFactory(_slack, settings, time);
        return _client = _factory.Authorized();
    }

    private async Task Send(string body) =>
        Assert.Equal(HttpStatusCode.OK, (await _client!.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(body))).StatusCode);

    private async Task<JsonObject> OnlyIncident(string state = "open") =>
        (await _client!.GetFromJsonAsync<JsonArray>($"/api/incidents?state={state}"))!.Single()!.AsObject();

    private static IEnumerable<JsonNode> PagerDutyDeliveries(JsonObject incident) =>
        incident["deliveries"]!.AsArray().Where(d => d!["channel"]!.GetValue<string>() == "pagerduty")!;

    private static string DedupKey(string groupKey) => PagerDutyEvents.DedupKey("b25-critical", groupKey);

    [Fact]
    public async Task Critical_firing_sends_exactly_one_trigger()
    {
        Start();
        await Send(Body("g1", Firing("a1")));

        await Eventually.True(() => _pagerDuty.Triggers.Count == 1, "one trigger");
        var trigger = _pagerDuty.Triggers[0];
        Assert.Equal(RoutingKey, trigger.RoutingKey);
        Assert.Equal(DedupKey("g1"), trigger.DedupKey);
        Assert.Equal("critical", trigger.Severity);
        Assert.StartsWith("[FIRING:1] HighErrorRate", trigger.Summary);
        Assert.InRange(trigger.Summary.Length, 1, 1024);
        Assert.Equal("a1", trigger.Payload!["source"]!.GetValue<string>());
        Assert.Contains("http://alerting.test/runbooks/HighErrorRate", trigger.LinkHrefs);
        Assert.Contains("http://prometheus.test/graph?g0.expr=up%3D%3D0", trigger.LinkHrefs);
        Assert.Equal("B25.Alerting", trigger.Body["client"]!.GetValue<string>());
        Assert.Equal("http://alertmanager.test:9093", trigger.Body["client_url"]!.GetValue<string>());
        var alerts = trigger.Payload["custom_details"]!["alerts"]!.AsArray();
        Assert.Equal("firing", Assert.Single(alerts)!["status"]!.GetValue<string>());
        await _factory!.SettledAsync();
        Assert.Single(_pagerDuty.Calls); // nothing else is sent
        Assert.Equal("sent", Assert.Single(PagerDutyDeliveries(await OnlyIncident()))["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Duplicate_notification_sends_nothing_more()
    {
        Start();
        var body = Body("g1", Firing("a1"));
        await Send(body);
        await Eventually.True(() => _pagerDuty.Triggers.Count == 1, "first trigger");

        await Send(body);
        await Send(body);

        await _factory!.SettledAsync();
        Assert.Single(_pagerDuty.Calls); // duplicates send nothing
    }

    [Fact]
    public async Task Incident_life_is_one_dedup_key_trigger_update_resolve_then_a_new_alert_on_the_same_key()
    {
        Start();
        await Send(Body("g1", Firing("a1")));
        await Eventually.True(() => _pagerDuty.Triggers.Count == 1, "trigger on open");

        await Send(Body("g1", Firing("a1"), Firing("a2")));
        await Eventually.True(() => _pagerDuty.Triggers.Count == 2, "trigger on change");
        Assert.Equal(DedupKey("g1"), _pagerDuty.Triggers[1].DedupKey);
        Assert.StartsWith("[FIRING:2]", _pagerDuty.Triggers[1].Summary);

        await Send(Body("g1", Resolved("a1"), Resolved("a2")));
        await Eventually.True(() => _pagerDuty.Resolves.Count == 1, "resolve on close");
        Assert.Equal(DedupKey("g1"), _pagerDuty.Resolves[0].DedupKey);
        Assert.Equal(RoutingKey, _pagerDuty.Resolves[0].RoutingKey);
        Assert.Null(_pagerDuty.Resolves[0].Payload);

        // A later firing of the group is a new incident; PagerDuty opens a new alert on the same key.
        await Send(Body("g1", Firing("a1", startsAt: T0.AddHours(1))));
        await Eventually.True(() => _pagerDuty.Triggers.Count == 3, "trigger for the new incident");
        Assert.Equal(DedupKey("g1"), _pagerDuty.Triggers[2].DedupKey);
        Assert.Equal(["trigger", "trigger", "resolve", "trigger"], _pagerDuty.Calls.Select(c => c.Action));
        await _factory!.SettledAsync();
        Assert.Equal(4, _pagerDuty.Calls.Count); // nothing else is sent
    }

    [Fact]
    public async Task Warning_alert_sends_no_PagerDuty_event()
    {
        Start();
        await Send(Body("g-warn", Firing("a1", severity: "warning")));

        await Eventually.True(() => _slack.Posts.Count == 1, "Slack gets it");
        await _factory!.SettledAsync();
        Assert.Empty(_pagerDuty.Calls); // the default routing pages critical only
        Assert.Empty(PagerDutyDeliveries(await OnlyIncident()));
    }

    [Fact]
    public async Task Http_400_is_recorded_as_failed_and_not_retried()
    {
        _pagerDuty.Respond(_ => (400, """{"status":"invalid event","message":"Event object is invalid","errors":["'payload.summary' is missing"]}""", null));
        Start();
        await Send(Body("g1", Firing("a1")));

        await Eventually.True(() => _pagerDuty.Calls.Count == 1, "one attempt");
        await _factory!.SettledAsync();
        Assert.Single(_pagerDuty.Calls); // a permanent error is not retried
        await Eventually.True(async () => Assert.Single(PagerDutyDeliveries(await OnlyIncident()))["status"]!.GetValue<string>() == "failed",
            "the delivery is recorded as failed");
        var delivery = Assert.Single(PagerDutyDeliveries(await OnlyIncident()));
        Assert.Contains("HTTP 400", delivery["lastError"]!.GetValue<string>());
        Assert.Contains("payload.summary", delivery["lastError"]!.GetValue<string>());
        Assert.DoesNotContain(RoutingKey, delivery["lastError"]!.GetValue<string>());
    }

    [Theory]
    [InlineData(429)]
    [InlineData(500)]
    [InlineData(503)]
    public async Task Rate_limit_and_server_errors_are_retried_and_delivered_once(int status)
    {
        var refused = 0;
        _pagerDuty.Respond(_ => Interlocked.Increment(ref refused) == 1 ? (status, """{"status":"throttled"}""", null) : null);
        Start();
        await Send(Body("g1", Firing("a1")));

        await Eventually.True(() => _pagerDuty.Triggers.Count == 1, "delivered after the refusal");
        await _factory!.SettledAsync();
        Assert.Single(_pagerDuty.Triggers); // exactly once
        Assert.Equal(2, _pagerDuty.Calls.Count);
        Assert.False(_pagerDuty.Calls[0].Answered);
    }

    [Fact]
    public async Task Outage_longer_than_the_quick_retry_keeps_the_page_queued_until_PagerDuty_is_back()
    {
        var refused = 0;
        _pagerDuty.Respond(_ => Interlocked.Increment(ref refused) <= 3 ? (502, "bad gateway", null) : null);
        Start();
        await Send(Body("g1", Firing("a1")));

        await Eventually.True(() => _pagerDuty.Calls.Count >= 2, "the quick retry happened");
        // The dispatcher records the failed attempt after PagerDuty answered: wait for the record, not for the call.
        await Eventually.True(async () =>
        {
            var pending = Assert.Single(PagerDutyDeliveries(await OnlyIncident()));
            return pending["status"]!.GetValue<string>() == "pending" && pending["lastError"]?.GetValue<string>().Contains("502") == true;
        }, "the delivery is queued with PagerDuty's 502 as its last error");

        await Eventually.True(() => _pagerDuty.Triggers.Count == 1, "delivered from the outbox", 15_000);
        await _factory!.SettledAsync();
        Assert.Single(_pagerDuty.Triggers); // exactly once
    }

    [Fact]
    public async Task On_the_service_clock_an_outbox_retry_waits_RetryDelay_and_no_longer()
    {
        // The service runs on a fake clock that only the test moves: the retry is due when the clock says so, whatever
        // the machine's load, and the test waits for nothing but recorded state. Durations are read from what the service
        // recorded (the outbox's schedule), not from how far the clock had run when a call was seen: the clock moves on
        // while a busy machine is slow to make the call.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var calledAt = new List<DateTimeOffset>();
        _pagerDuty.Respond(_ =>
        {
            lock (calledAt)
            {
                calledAt.Add(time.GetUtcNow());
                return calledAt.Count <= 2 ? (502, "bad gateway", null) : null;
            }
        });
        Start(new() { ["PagerDuty:RetryDelay"] = "00:10:00" }, time: time);
        await Send(Body("g1", Firing("a1")));

        // The attempt and its quick retry (about 1 s on the clock, jittered) fail: the delivery waits in the outbox.
        await RunClockUntil(time, TimeSpan.FromMilliseconds(500), async () =>
            (await _client!.GetFromJsonAsync<JsonArray>("/api/incidents?state=open"))!.SingleOrDefault() is JsonObject incident
            && PagerDutyDeliveries(incident).SingleOrDefault()?["lastError"]?.GetValue<string>().Contains("502") == true,
            "the failed attempts are recorded");
        var recordedBy = time.GetUtcNow();
        Assert.Equal(2, _pagerDuty.Calls.Count);
        Assert.True(calledAt[1] - calledAt[0] >= TimeSpan.FromSeconds(1), $"the quick retry waited {calledAt[1] - calledAt[0]} on the service clock");

        // Scheduled RetryDelay after the failure, lengthened by the outbox's jitter (up to +20 %), never shortened. The failure
        // was recorded at a clock reading between the second call and now.
        DateTimeOffset dueAt;
        await using (var db = await _factory!.OpenStorageAsync())
            dueAt = DateTimeOffset.FromUnixTimeMilliseconds(await Dapper.SqlMapper.ExecuteScalarAsync<long>(db,
                "SELECT next_attempt_at FROM deliveries WHERE channel = 'pagerduty' AND status = 'pending'"));
        Assert.InRange(dueAt, calledAt[1] + TimeSpan.FromMinutes(10), recordedBy + TimeSpan.FromMinutes(12));

        // Not before it is due; once the clock reaches it, sent.
        time.Advance(dueAt - time.GetUtcNow() - TimeSpan.FromSeconds(1));
        Assert.Equal(2, _pagerDuty.Calls.Count);
        await RunClockUntil(time, TimeSpan.FromSeconds(1), () => Task.FromResult(_pagerDuty.Triggers.Count == 1), "delivered from the outbox");
        Assert.True(calledAt[2] >= dueAt, $"sent at {calledAt[2]:O}, due at {dueAt:O}");
        await _factory!.SettledAsync();
        Assert.Equal(3, _pagerDuty.Calls.Count);
        Assert.Equal("sent", Assert.Single(PagerDutyDeliveries(await OnlyIncident()))["status"]!.GetValue<string>());
    }

    /// <summary>Moves the clock on by <paramref name="step"/> at a time until the condition holds (at most 2,000 steps).</summary>
    private static async Task RunClockUntil(FakeTimeProvider time, TimeSpan step, Func<Task<bool>> condition, string because)
    {
        for (var i = 0; i < 2_000; i++)
        {
            if (await condition()) return;
            time.Advance(step);
            await Task.Delay(10);
        }
        Assert.Fail($"the clock ran {2_000 * step} and still not: {because}");
    }

    [Fact]
    public async Task PagerDuty_down_the_whole_incident_still_gets_the_trigger_then_the_resolve()
    {
        var down = true;
        _pagerDuty.Respond(_ => Volatile.Read(ref down) ? (500, "down", null) : null);
        // Long enough an outbox wait that the resolve joins the trigger while both are queued.
        Start(new() { ["PagerDuty:RetryDelay"] = "00:00:03" });
        await Send(Body("g1", Firing("a1")));
        await Eventually.True(() => _pagerDuty.Calls.Count >= 2, "the attempt and its quick retry failed");
        await Send(Body("g1", Resolved("a1")));
        await Eventually.True(async () => (await _client!.GetFromJsonAsync<JsonArray>("/api/incidents?state=closed"))!.Count == 1, "incident closed");

        Volatile.Write(ref down, false);

        await Eventually.True(() => _pagerDuty.Resolves.Count == 1, "resolve sent", 15_000);
        Assert.Equal(["trigger", "resolve"], _pagerDuty.Accepted.Select(e => e.Action));
        Assert.StartsWith("[RESOLVED]", _pagerDuty.Triggers[0].Summary);
        await _factory!.SettledAsync();
        Assert.Equal(2, _pagerDuty.Accepted.Count); // nothing more
    }

    [Fact]
    public async Task Without_a_routing_key_the_channel_is_off_and_Slack_still_works()
    {
        Start(pagerDuty: false);
        await Send(Body("g1", Firing("a1")));

        await Eventually.True(() => _slack.Posts.Count == 1, "Slack posts the critical alert");
        await _factory!.SettledAsync();
        Assert.Empty(_pagerDuty.Calls); // PagerDuty is off
        Assert.Empty(PagerDutyDeliveries(await OnlyIncident()));
    }

    [Fact]
    public async Task A_route_can_name_another_routing_key()
    {
        Start(new()
        {
            ["PagerDuty:RoutingKeys:trading-desk"] = "TRADINGDESKKEY000000000000000001",
            ["Routing:Routes:1:PagerDuty:RoutingKey"] = "trading-desk",
        });
        await Send(Body("g1", Firing("a1")));

        await Eventually.True(() => _pagerDuty.Triggers.Count == 1, "one trigger");
        Assert.Equal("TRADINGDESKKEY000000000000000001", _pagerDuty.Triggers[0].RoutingKey);
        Assert.Equal("trading-desk", Assert.Single(PagerDutyDeliveries(await OnlyIncident()))["target"]!.GetValue<string>());
    }

    [Fact]
    public void A_route_naming_an_unconfigured_routing_key_fails_the_start()
    {
        // A refused start is one Critical log line (and exit code 1 as a process: tests/Hosting/StartTests).
        using var logs = new B25.Alerting.Tests.Runbooks.LogCapture();
        using var factory = new AlertingFactory(_slack, new()
        {
            ["PagerDuty:RoutingKey"] = RoutingKey, ["PagerDuty:EventsUrl"] = _pagerDuty.EventsUrl, ["Routing:Routes:1:PagerDuty:RoutingKey"] = "nobody",
        });
        using var service = factory.WithWebHostBuilder(b => Microsoft.AspNetCore.TestHost.WebHostBuilderExtensions.ConfigureTestServices(b,
            s => Microsoft.Extensions.DependencyInjection.ServiceCollectionServiceExtensions.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(s, logs)));
        Assert.ThrowsAny<Exception>(() => service.CreateClient());
        var message = Assert.Single(logs.Lines, l => l.Level == Microsoft.Extensions.Logging.LogLevel.Critical).Message;
        Assert.Contains("PagerDuty:RoutingKeys:nobody", message);
        Assert.DoesNotContain(RoutingKey, message);
    }
}
