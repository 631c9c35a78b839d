using System.Text.Json.Nodes;

namespace B25.Alerting.Tests.Support;

/// <summary>Builds Alertmanager webhook v4 bodies shaped like the real ones in shared/samples.</summary>
public static class Notifications
{
    public static readonly DateTimeOffset T0 = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    public sealed record Alert(string Fingerprint, string Status = "firing", DateTimeOffset? StartsAt = null,
        Dictionary<string, string>? Labels = null, Dictionary<string, string>? Annotations = null);

    public static Alert Firing(string fingerprint, string alertname = "HighErrorRate", string severity = "critical", DateTimeOffset? startsAt = null) =>
        new(fingerprint, "firing", startsAt ?? T0, new() { ["alertname"] = alertname, ["severity"] = severity, ["instance"] = fingerprint },
            new() { ["summary"] = $"{alertname} on {fingerprint}", ["runbook_url"] = $"http://alerting.test/runbooks/{alertname}" });

    public static Alert Resolved(string fingerprint, string alertname = "HighErrorRate", string severity = "critical", DateTimeOffset? startsAt = null) =>
        Firing(fingerprint, alertname, severity, startsAt) with { Status = "resolved" };

    public static string Body(string groupKey, params Alert[] alerts) => Build(groupKey, ReceiverFor(alerts), alerts).ToJsonString();

    /// <summary>The receiver alertmanager/alertmanager.yml's tree sends such alerts to (by the first alert's labels).</summary>
    public static string ReceiverFor(params Alert[] alerts)
    {
        var labels = alerts.FirstOrDefault()?.Labels ?? [];
        if (labels.GetValueOrDefault("action") == "emergency-stop") return "b25-emergency-stop";
        return labels.GetValueOrDefault("severity") switch
        {
            "critical" => "b25-critical",
            "warning" => "b25-warning",
            "info" => "b25-info",
            _ => "b25-default",
        };
    }

    public static JsonObject Build(string groupKey, string receiver, params Alert[] alerts)
    {
        var common = alerts.Length > 0 ? new Dictionary<string, string>(alerts[0].Labels ?? []) : new Dictionary<string, string>();
        foreach (var a in alerts.Skip(1))
            foreach (var key in common.Keys.ToList())
                if (a.Labels?.GetValueOrDefault(key) != common[key]) common.Remove(key);
        var alertname = common.GetValueOrDefault("alertname", "HighErrorRate");
        return new JsonObject
        {
            ["receiver"] = receiver,
            ["status"] = alerts.Any(a => a.Status == "firing") ? "firing" : "resolved",
            ["alerts"] = new JsonArray(alerts.Select(a => (JsonNode)new JsonObject
            {
                ["status"] = a.Status,
                ["labels"] = ToJson(a.Labels ?? []),
                ["annotations"] = ToJson(a.Annotations ?? []),
                ["startsAt"] = (a.StartsAt ?? T0).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'"),
                ["endsAt"] = a.Status == "resolved" ? (a.StartsAt ?? T0).AddMinutes(5).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'") : "0001-01-01T00:00:00Z",
                ["generatorURL"] = "http://prometheus.test/graph?g0.expr=up%3D%3D0",
                ["fingerprint"] = a.Fingerprint,
            }).ToArray()),
            ["groupLabels"] = new JsonObject { ["alertname"] = alertname },
            ["commonLabels"] = ToJson(common),
            ["commonAnnotations"] = new JsonObject(),
            ["externalURL"] = "http://alertmanager.test:9093",
            ["version"] = "4",
            ["groupKey"] = groupKey,
            ["truncatedAlerts"] = 0,
        };
    }

    private static JsonObject ToJson(Dictionary<string, string> map) =>
        new(map.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value))));
}
