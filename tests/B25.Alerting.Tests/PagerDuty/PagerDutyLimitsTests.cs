using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using B25.Alerting.Delivery;
using B25.Alerting.Delivery.PagerDuty;
using B25.Alerting.Tests.Slack;
using B25.Alerting.Tests.Support;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.PagerDuty;

/// <summary>
/// PagerDuty's limits, checked against the bytes sent: 512,000 bytes of UTF-8 per event (Alertmanager's
/// bound), whole characters at every cut, percent-encoded link targets.
/// </summary>
public sealed class PagerDutyLimitsTests
{
    private const string Fire = "🔥"; // 2 UTF-16 code units, 4 UTF-8 bytes

    private static IncidentView WithAnnotations(IncidentView incident, Func<int, Dictionary<string, string>> annotations) =>
        incident with { Alerts = incident.Alerts.Select((a, i) => a with { Annotations = annotations(i) }).ToList() };

    private static IEnumerable<string> Strings(JsonNode? node) => node switch
    {
        JsonObject o => o.SelectMany(p => Strings(p.Value).Prepend(p.Key)),
        JsonArray a => a.SelectMany(Strings),
        JsonValue v when v.TryGetValue<string>(out var s) => [s],
        _ => [],
    };

    [Fact]
    public void The_bound_is_512000_bytes_as_Alertmanager_keeps_it()
    {
        Assert.Equal(512_000, PagerDutyEvents.MaxEventBytes);
    }

    [Fact]
    public void A_huge_incident_of_multibyte_text_stays_under_512000_bytes_of_UTF8()
    {
        // 4-byte characters: counting characters instead of bytes would send about twice the limit.
        var incident = WithAnnotations(PagerDutyEventsTests.Incident(5_000), i => new()
        {
            ["summary"] = $"{i} " + string.Concat(Enumerable.Repeat(Fire, 100)),
            ["description"] = string.Concat(Enumerable.Repeat("注文拒否", 200)),
        });

        var json = PagerDutyEvents.Trigger(incident, "KEY", "b25-x", new PagerDutyOptions());

        var bytes = Encoding.UTF8.GetByteCount(json);
        Assert.True(bytes <= 512_000, $"{bytes} bytes");
        Assert.True(bytes > 400_000, $"{bytes} bytes: the budget is used, not wasted");
        var details = JsonNode.Parse(json)!["payload"]!["custom_details"]!;
        Assert.Equal(5_000 - details["alerts"]!.AsArray().Count, details["alerts_dropped"]!.GetValue<int>());
    }

    [Fact]
    public void Summary_class_source_and_label_values_are_cut_at_whole_characters()
    {
        // For each offset, an emoji lies across the last code unit kept by one of the limits (1,024, 255, 4,096).
        for (var offset = 0; offset < 2; offset++)
        {
            var emoji = string.Concat(Enumerable.Repeat(Fire, 3_000));
            var incident = PagerDutyEventsTests.Incident(1, commonAnnotations: new() { ["summary"] = new string('s', offset) + emoji });
            incident = incident with
            {
                GroupLabels = new Dictionary<string, string> { ["alertname"] = new string('A', 252 + offset) + emoji },
                CommonLabels = new Dictionary<string, string>
                {
                    ["alertname"] = new string('A', 252 + offset) + emoji, ["service"] = new string('S', 252 + offset) + emoji,
                    ["team"] = new string('T', 252 + offset) + emoji,
                },
            };
            incident = WithAnnotations(incident, _ => new() { ["summary"] = new string('x', 4_094 + offset) + emoji });

            var json = PagerDutyEvents.Trigger(incident, "KEY", "b25-x", new PagerDutyOptions());

            var payload = JsonNode.Parse(json)!["payload"]!;
            Assert.All(Strings(payload), v => Assert.False(SlackLimitsTests.HasLoneSurrogate(v) || v.Contains('\uFFFD'), $"offset {offset}: {v[Math.Max(0, v.Length - 8)..]}"));
            foreach (var field in new[] { "summary", "class", "source", "component", "group" })
            {
                var value = payload[field]!.GetValue<string>();
                Assert.False(SlackLimitsTests.HasLoneSurrogate(value), $"{field} at offset {offset}");
                Assert.EndsWith("…", value);
            }
            var summary = payload["custom_details"]!["alerts"]![0]!["annotations"]!["summary"]!.GetValue<string>();
            Assert.False(SlackLimitsTests.HasLoneSurrogate(summary), $"alert summary at offset {offset}");
        }
    }

    [Fact]
    public void Link_targets_are_percent_encoded()
    {
        var incident = PagerDutyEventsTests.Incident(1, commonAnnotations: new()
        {
            ["summary"] = "s",
            ["runbook_url"] = "http://runbooks.test/Order Rejects<b>|c?q=\"x\"&r=é",
        });
        incident = incident with
        {
            Alerts = [incident.Alerts[0] with { GeneratorUrl = "http://prometheus.test/graph?g0.expr=rate(x[5m])>0.5&g0.tab=1|%7C" }],
        };
        var options = new PagerDutyOptions { GrafanaUrl = "http://grafana.test/d/b25?var-service=order-execution" };

        var evt = JsonNode.Parse(PagerDutyEvents.Trigger(incident, "KEY", "b25-x", options))!;

        var hrefs = evt["links"]!.AsArray().Select(l => l!["href"]!.GetValue<string>()).ToList();
        Assert.Equal(
        [
            "http://runbooks.test/Order%20Rejects%3Cb%3E%7Cc?q=%22x%22&r=%C3%A9",
            "http://runbooks.test/HighErrorRate",
            "http://prometheus.test/graph?g0.expr=rate(x[5m])%3E0.5&g0.tab=1%7C%7C",
            "http://grafana.test/d/b25?var-service=order-execution",
        ], hrefs);
        Assert.All(hrefs, h => Assert.DoesNotContain(h, c => c is '<' or '>' or '|' or '"' or ' ' || c > 127));
    }

    [Fact]
    public void Only_http_links_that_fit_are_sent()
    {
        var incident = PagerDutyEventsTests.Incident(1, commonAnnotations: new()
        {
            ["summary"] = "s",
            ["runbook_url"] = "javascript:alert(1)",
        });
        incident = incident with
        {
            ExternalUrl = "http://alertmanager.test/" + new string('a', 5_000),
            Alerts = [incident.Alerts[0] with { GeneratorUrl = "http://prometheus.test/graph?g0.expr=" + new string('x', 5_000) }],
        };

        var evt = JsonNode.Parse(PagerDutyEvents.Trigger(incident, "KEY", "b25-x", new PagerDutyOptions()))!;

        var hrefs = evt["links"]!.AsArray().Select(l => l!["href"]!.GetValue<string>()).ToList();
        Assert.Equal(["http://runbooks.test/HighErrorRate"], hrefs);
        Assert.Null(evt["client_url"]); // cut, it would lead nowhere
    }

    [Fact]
    public void An_error_answer_is_cut_at_whole_characters()
    {
        // As PagerDutyEventsApi cuts PagerDuty's error answers (300 characters).
        var answer = new string('e', 298) + Fire + " and more";
        Assert.Equal(new string('e', 298) + "…", TextLimits.Truncate(answer, 300));
    }
}

/// <summary>A huge incident through the service to the PagerDuty stand-in: the bytes on the wire stay under the bound.</summary>
public sealed class PagerDutyLimitsDeliveryTests : IDisposable
{
    private readonly SlackStandIn _slack = new();
    private readonly PagerDutyStandIn _pagerDuty = new();
    private readonly AlertingFactory _factory;
    private readonly HttpClient _client;

    public PagerDutyLimitsDeliveryTests()
    {
        _factory = new AlertingFactory(_slack, new()
        {
            ["PagerDuty:RoutingKey"] = PagerDutyDeliveryTests.RoutingKey,
            ["PagerDuty:EventsUrl"] = _pagerDuty.EventsUrl,
        });
        _client = _factory.Authorized();
    }

    public void Dispose()
    {
        _client.Dispose();
        _factory.Dispose();
        _pagerDuty.Dispose();
        _slack.Dispose();
    }

    [Fact]
    public async Task A_huge_incident_is_sent_in_at_most_512000_bytes_with_percent_encoded_links()
    {
        // About 50 KB of common annotations and 11.5 KB per alert (8,000 of them 2-byte characters): the 40
        // alerts the service loads would come to about 517,000 bytes, between 512,000 and 524,288 (512 KiB).
        var alerts = Enumerable.Range(0, 60).Select(i => Firing($"a{i}") with
        {
            Annotations = new()
            {
                ["summary"] = new string('é', 4_000),
                ["description"] = new string('d', 3_500),
                ["runbook_url"] = "http://alerting.test/runbooks/High Error|Rate<x>",
            },
        }).ToArray();
        var body = Build("g-huge", "b25-critical", alerts);
        body["commonAnnotations"] = new JsonObject(Enumerable.Range(0, 12)
            .Select(i => KeyValuePair.Create($"note{i}", (JsonNode?)JsonValue.Create(new string('c', 4_000)))));
        Assert.Equal(HttpStatusCode.OK,
            (await _client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(body.ToJsonString()))).StatusCode);

        await Eventually.True(() => _pagerDuty.Triggers.Count == 1, "one trigger", 20_000);
        var trigger = _pagerDuty.Triggers[0];
        Assert.InRange(trigger.Bytes, 490_000, 512_000);
        Assert.Contains("http://alerting.test/runbooks/High%20Error%7CRate%3Cx%3E", trigger.LinkHrefs);
        var details = trigger.Payload!["custom_details"]!;
        Assert.InRange(details["alerts"]!.AsArray().Count, 30, 39);
        Assert.Equal(12, details["common_annotations"]!.AsObject().Count);
    }
}
