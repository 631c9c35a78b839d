using System.Text;
using System.Text.Json.Nodes;
using B25.Alerting.Delivery;
using B25.Alerting.Delivery.PagerDuty;

namespace B25.Alerting.Tests.PagerDuty;

/// <summary>The event builder: dedup_key, severity, summary and the 512 KB limit.</summary>
public sealed class PagerDutyEventsTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    internal static IncidentView Incident(int alerts, string state = "open", string severity = "critical", int annotationLength = 200,
        Dictionary<string, string>? commonAnnotations = null)
    {
        var list = Enumerable.Range(0, alerts).Select(i => new AlertView(
            $"fp{i:D6}", T0.AddSeconds(i).ToString("O"), state == "open" ? "firing" : "resolved", null,
            new Dictionary<string, string> { ["alertname"] = "HighErrorRate", ["severity"] = severity, ["service"] = "order-execution", ["instance"] = $"oe-{i}:9100" },
            new Dictionary<string, string> { ["summary"] = new string('x', annotationLength), ["runbook_url"] = "http://runbooks.test/HighErrorRate" },
            $"http://prometheus.test/graph?g0.expr=rate{i}")).ToList();
        return new IncidentView("inc1", "b25-critical", "{}:{alertname=\"HighErrorRate\"}", state, 1, T0, null,
            new Dictionary<string, string> { ["alertname"] = "HighErrorRate", ["service"] = "order-execution" },
            new Dictionary<string, string> { ["alertname"] = "HighErrorRate", ["severity"] = severity, ["service"] = "order-execution" },
            commonAnnotations ?? new Dictionary<string, string> { ["summary"] = "Error rate above 5%" },
            "http://alertmanager.test:9093",
            state == "open" ? alerts : 0, state == "open" ? 0 : alerts, list);
    }

    [Theory]
    [InlineData("critical", "critical")]
    [InlineData("CRITICAL", "critical")]
    [InlineData("error", "error")]
    [InlineData("warning", "warning")]
    [InlineData("warn", "warning")]
    [InlineData("info", "info")]
    [InlineData("page-me", "error")]
    [InlineData("", "error")]
    [InlineData(null, "error")]
    public void Severity_label_maps_to_PagerDuty_severity(string? label, string expected) =>
        Assert.Equal(expected, PagerDutyEvents.Severity(label));

    [Fact]
    public void Dedup_key_is_stable_short_and_per_group()
    {
        var key = PagerDutyEvents.DedupKey("b25-critical", "{}:{alertname=\"X\"}");
        Assert.Equal(key, PagerDutyEvents.DedupKey("b25-critical", "{}:{alertname=\"X\"}"));
        Assert.StartsWith("b25-", key);
        Assert.Equal(68, key.Length);
        Assert.True(key.Length <= PagerDutyEvents.MaxDedupKeyLength);
        Assert.NotEqual(key, PagerDutyEvents.DedupKey("b25-warning", "{}:{alertname=\"X\"}"));
        Assert.NotEqual(key, PagerDutyEvents.DedupKey("b25-critical", "{}:{alertname=\"Y\"}"));
        Assert.Equal(68, PagerDutyEvents.DedupKey("r", new string('g', 100_000)).Length);
    }

    [Fact]
    public void Trigger_carries_summary_source_severity_links_and_client()
    {
        var options = new PagerDutyOptions { GrafanaUrl = "http://grafana.test/d/b25", ClientUrl = "http://alerting.test/" };
        var evt = JsonNode.Parse(PagerDutyEvents.Trigger(Incident(3), "KEY", "b25-x", options))!;

        Assert.Equal("KEY", evt["routing_key"]!.GetValue<string>());
        Assert.Equal("trigger", evt["event_action"]!.GetValue<string>());
        Assert.Equal("b25-x", evt["dedup_key"]!.GetValue<string>());
        var payload = evt["payload"]!;
        Assert.Equal("[FIRING:3] HighErrorRate service=order-execution: Error rate above 5%", payload["summary"]!.GetValue<string>());
        Assert.Equal("order-execution", payload["source"]!.GetValue<string>());
        Assert.Equal("critical", payload["severity"]!.GetValue<string>());
        Assert.Equal("2026-11-25T12:00:00.000Z", payload["timestamp"]!.GetValue<string>());
        Assert.Equal("order-execution", payload["component"]!.GetValue<string>());
        Assert.Equal("HighErrorRate", payload["class"]!.GetValue<string>());
        Assert.Equal(3, payload["custom_details"]!["alerts"]!.AsArray().Count);
        Assert.Null(payload["custom_details"]!["alerts_dropped"]);
        var links = evt["links"]!.AsArray().Select(l => (l!["text"]!.GetValue<string>(), l["href"]!.GetValue<string>())).ToList();
        Assert.Equal(
            [("Runbook", "http://runbooks.test/HighErrorRate"), ("Prometheus graph", "http://prometheus.test/graph?g0.expr=rate0"), ("Grafana", "http://grafana.test/d/b25")],
            links);
        Assert.Equal("B25.Alerting", evt["client"]!.GetValue<string>());
        Assert.Equal("http://alerting.test/", evt["client_url"]!.GetValue<string>());
    }

    [Fact]
    public void Client_url_defaults_to_the_Alertmanager_external_url()
    {
        var evt = JsonNode.Parse(PagerDutyEvents.Trigger(Incident(1), "KEY", "b25-x", new PagerDutyOptions()))!;
        Assert.Equal("http://alertmanager.test:9093", evt["client_url"]!.GetValue<string>());
    }

    [Fact]
    public void Summary_is_capped_at_1024_characters()
    {
        var incident = Incident(1, commonAnnotations: new() { ["summary"] = new string('s', 5_000) });
        var summary = JsonNode.Parse(PagerDutyEvents.Trigger(incident, "KEY", "b25-x", new PagerDutyOptions()))!["payload"]!["summary"]!.GetValue<string>();
        Assert.Equal(PagerDutyEvents.MaxSummaryLength, summary.Length);
        Assert.StartsWith("[FIRING:1] HighErrorRate", summary);
    }

    [Fact]
    public void Twenty_thousand_alerts_stay_under_512_KB_and_say_how_many_were_dropped()
    {
        var json = PagerDutyEvents.Trigger(Incident(20_000), "KEY", "b25-x", new PagerDutyOptions { GrafanaUrl = "http://grafana.test/" });

        Assert.True(Encoding.UTF8.GetByteCount(json) < PagerDutyEvents.MaxEventBytes, $"{Encoding.UTF8.GetByteCount(json)} bytes");
        var details = JsonNode.Parse(json)!["payload"]!["custom_details"]!;
        var listed = details["alerts"]!.AsArray().Count;
        Assert.InRange(listed, 100, 19_999);
        Assert.Equal(20_000 - listed, details["alerts_dropped"]!.GetValue<int>());
        Assert.Contains($"{20_000 - listed} of 20000 alerts not listed", details["alerts_note"]!.GetValue<string>());
        Assert.Equal(20_000, details["firing"]!.GetValue<int>());
    }

    [Fact]
    public void Huge_label_values_are_truncated_and_the_event_still_fits()
    {
        var incident = Incident(50, annotationLength: 2_000_000);
        var json = PagerDutyEvents.Trigger(incident, "KEY", "b25-x", new PagerDutyOptions());
        Assert.True(Encoding.UTF8.GetByteCount(json) < PagerDutyEvents.MaxEventBytes);
        Assert.Equal(50, JsonNode.Parse(json)!["payload"]!["custom_details"]!["alerts"]!.AsArray().Count);
    }

    [Fact]
    public void Resolve_and_acknowledge_carry_only_the_key_and_action()
    {
        Assert.Equal("""{"routing_key":"KEY","event_action":"resolve","dedup_key":"b25-x"}""", PagerDutyEvents.Resolve("KEY", "b25-x"));
        Assert.Equal("""{"routing_key":"KEY","event_action":"acknowledge","dedup_key":"b25-x"}""", PagerDutyEvents.Acknowledge("KEY", "b25-x"));
    }

    [Fact]
    public void Severity_of_a_mixed_group_is_the_most_severe_firing_alert()
    {
        var incident = Incident(2, severity: "warning");
        var alerts = incident.Alerts.ToList();
        alerts[1] = alerts[1] with { Labels = new Dictionary<string, string>(alerts[1].Labels) { ["severity"] = "critical" } };
        Assert.Equal("critical", PagerDutyEvents.IncidentSeverity(incident with { Alerts = alerts }));
        Assert.Equal("warning", PagerDutyEvents.IncidentSeverity(incident));
    }
}
