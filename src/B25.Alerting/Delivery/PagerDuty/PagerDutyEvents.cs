using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace B25.Alerting.Delivery.PagerDuty;

/// <summary>Builds Events API v2 bodies from an incident. Pure functions, so the limits are unit-testable.</summary>
internal static class PagerDutyEvents
{
    /// <summary>
    /// PagerDuty refuses events over 512 KB; Alertmanager (notify/pagerduty, maxEventSize) keeps the UTF-8
    /// encoded event within 512,000 bytes, and so does this: the bound is on the serialized bytes sent.
    /// </summary>
    public const int MaxEventBytes = 512_000;
    public const int MaxSummaryLength = 1024;
    public const int MaxDedupKeyLength = 255;
    private const int MaxFieldLength = 255;
    private const int MaxValueLength = 4096;
    /// <summary>Longer link targets are left out rather than cut: a cut URL leads nowhere.</summary>
    private const int MaxHrefLength = 2048;
    // Room kept for "alerts_dropped" and the note that goes with it.
    private const int DroppedNoteReserve = 256;
    public const string Client = "B25.Alerting";

    private static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly string[] SeverityOrder = ["info", "warning", "error", "critical"];
    private static readonly string[] SourceLabels = ["service", "instance", "job"];

    /// <summary>
    /// One PagerDuty alert per Alertmanager group: the same receiver and groupKey give the same key on
    /// every replica and after restarts. A trigger after a resolve opens a new PagerDuty alert.
    /// </summary>
    public static string DedupKey(string receiver, string groupKey) =>
        "b25-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{receiver}\n{groupKey}")));

    /// <summary>Maps the <c>severity</c> label to PagerDuty's four; unknown or missing is error (pages, but says it was not classified).</summary>
    public static string Severity(string? label) => label?.Trim().ToLowerInvariant() switch
    {
        "critical" or "crit" or "fatal" or "page" => "critical",
        "error" or "err" => "error",
        "warning" or "warn" => "warning",
        "info" or "information" or "informational" or "none" => "info",
        _ => "error",
    };

    /// <summary>The most severe firing alert decides; the common label when none fires any more.</summary>
    public static string IncidentSeverity(IncidentView incident)
    {
        var firing = incident.Alerts.Where(a => a.Status == "firing").Select(a => Severity(a.Labels.GetValueOrDefault("severity"))).ToList();
        return firing.Count > 0
            ? firing.MaxBy(s => Array.IndexOf(SeverityOrder, s))!
            : Severity(incident.CommonLabels.GetValueOrDefault("severity") ?? incident.Alerts.FirstOrDefault()?.Labels.GetValueOrDefault("severity"));
    }

    /// <summary>"[FIRING:3] HighErrorRate service=order-execution: error rate above 5%", at most 1,024 characters.</summary>
    public static string Summary(IncidentView incident)
    {
        var state = incident.State == "closed" || incident.FiringCount == 0 ? "RESOLVED" : $"FIRING:{incident.FiringCount}";
        var labels = incident.GroupLabels.Count > 0 ? incident.GroupLabels : incident.CommonLabels;
        var name = labels.GetValueOrDefault("alertname") ?? incident.CommonLabels.GetValueOrDefault("alertname");
        var parts = new List<string>();
        if (!string.IsNullOrEmpty(name)) parts.Add(name);
        parts.AddRange(labels.Where(kv => kv.Key != "alertname").OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"));
        var title = incident.CommonAnnotations.GetValueOrDefault("title") ?? incident.CommonAnnotations.GetValueOrDefault("summary");
        if (title is null && incident.Alerts.Count(a => a.Status == "firing") == 1)
            title = incident.Alerts.First(a => a.Status == "firing").Annotations.GetValueOrDefault("summary");
        var text = $"[{state}] {string.Join(' ', parts)}".TrimEnd();
        if (!string.IsNullOrWhiteSpace(title)) text += ": " + title.Trim();
        return Truncate(text.ReplaceLineEndings(" "), MaxSummaryLength);
    }

    /// <summary>The summary from the presentation every channel shares: the state, then the first line.</summary>
    public static string Summary(Presentation.IncidentPresentation p) =>
        TextLimits.Truncate($"[{(p.Resolved || p.FiringCount == 0 ? "RESOLVED" : $"FIRING:{p.FiringCount}")}] {p.Headline}".ReplaceLineEndings(" "),
            MaxSummaryLength);

    /// <param name="presentation">The incident as every channel shows it: its first line is the summary, its links the links,
    /// and the first action and current value go into custom_details. Null: built from the incident alone.</param>
    public static string Trigger(IncidentView incident, string routingKey, string dedupKey, PagerDutyOptions options, int maxBytes = MaxEventBytes,
        Presentation.IncidentPresentation? presentation = null)
    {
        var labels = incident.CommonLabels;
        var payload = new JsonObject
        {
            ["summary"] = presentation is null ? Summary(incident) : Summary(presentation),
            ["source"] = Truncate(SourceLabels.Select(labels.GetValueOrDefault).FirstOrDefault(v => !string.IsNullOrWhiteSpace(v)) ?? "b25-alerting", MaxFieldLength),
            ["severity"] = IncidentSeverity(incident),
            ["timestamp"] = incident.OpenedAt.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'"),
        };
        if ((labels.GetValueOrDefault("service") ?? labels.GetValueOrDefault("job")) is { Length: > 0 } component)
            payload["component"] = Truncate(component, MaxFieldLength);
        payload["group"] = Truncate(labels.GetValueOrDefault("team") is { Length: > 0 } team ? team : incident.Receiver, MaxFieldLength);
        if ((incident.GroupLabels.GetValueOrDefault("alertname") ?? labels.GetValueOrDefault("alertname")) is { Length: > 0 } alertname)
            payload["class"] = Truncate(alertname, MaxFieldLength);

        var details = new JsonObject
        {
            ["incident"] = incident.Id,
            ["receiver"] = incident.Receiver,
            ["state"] = incident.State,
            ["firing"] = incident.FiringCount,
            ["resolved"] = incident.ResolvedCount,
            ["group_labels"] = Map(incident.GroupLabels),
            ["common_labels"] = Map(incident.CommonLabels),
            ["common_annotations"] = Map(incident.CommonAnnotations),
        };
        payload["custom_details"] = details;

        var clientUrl = !string.IsNullOrWhiteSpace(options.ClientUrl) ? options.ClientUrl : incident.ExternalUrl;
        var evt = new JsonObject
        {
            ["routing_key"] = routingKey,
            ["event_action"] = "trigger",
            ["dedup_key"] = dedupKey,
            ["payload"] = payload,
            ["client"] = Client,
        };
        if (Href(clientUrl) is { } href) evt["client_url"] = href;
        evt["links"] = Links(incident, options, presentation);
        if (presentation is not null)
        {
            if (presentation.FirstAction is { } action) details["first_action"] = action;
            if (presentation.ValueLine is { } value) details["value"] = value;
            if (presentation.ContextNote is { } note) details["context"] = note;
        }

        // Fill custom_details.alerts with as many alerts as fit under the size limit; say how many did not.
        var alerts = new JsonArray();
        details["alerts"] = alerts;
        var size = Bytes(evt);
        if (size + DroppedNoteReserve >= maxBytes)
        {
            // Pathological labels or annotations: keep the page, drop the detail.
            foreach (var key in new[] { "common_annotations", "common_labels", "group_labels" }) details[key] = new JsonObject();
            size = Bytes(evt);
        }
        var budget = maxBytes - DroppedNoteReserve;
        foreach (var alert in incident.Alerts)
        {
            var node = AlertDetails(alert);
            var bytes = Bytes(node) + (alerts.Count > 0 ? 1 : 0);
            if (size + bytes >= budget) break;
            alerts.Add(node);
            size += bytes;
        }
        var total = Math.Max(incident.Alerts.Count, incident.FiringCount + incident.ResolvedCount);
        var dropped = total - alerts.Count;
        if (dropped > 0)
        {
            details["alerts_dropped"] = dropped;
            details["alerts_note"] = $"{dropped} of {total} alerts not listed (PagerDuty events are limited to 512 KB); see Alertmanager or the incidents API for all of them.";
        }
        var json = evt.ToJsonString(Json);
        if (Encoding.UTF8.GetByteCount(json) < maxBytes) return json;
        // The sizes above add up to the serialized event; should they ever not, keep the page and drop the
        // detail, as Alertmanager does.
        payload["custom_details"] = new JsonObject
        {
            ["incident"] = incident.Id,
            ["firing"] = incident.FiringCount,
            ["resolved"] = incident.ResolvedCount,
            ["error"] = "Custom details were left out: the event would have exceeded PagerDuty's 512 KB limit.",
        };
        return evt.ToJsonString(Json);
    }

    public static string Resolve(string routingKey, string dedupKey) => Action("resolve", routingKey, dedupKey);

    public static string Acknowledge(string routingKey, string dedupKey) => Action("acknowledge", routingKey, dedupKey);

    private static string Action(string action, string routingKey, string dedupKey) => new JsonObject
    {
        ["routing_key"] = routingKey,
        ["event_action"] = action,
        ["dedup_key"] = dedupKey,
    }.ToJsonString(Json);

    private static JsonArray Links(IncidentView incident, PagerDutyOptions options, Presentation.IncidentPresentation? presentation)
    {
        var links = new JsonArray();
        var seen = new HashSet<string>();
        void Add(string? url, string text)
        {
            if (Href(url) is { } href && seen.Add(href) && links.Count < 10)
                links.Add(new JsonObject { ["href"] = href, ["text"] = text });
        }
        foreach (var link in presentation?.Links ?? []) Add(link.Url, link.Text);
        Add(incident.CommonAnnotations.GetValueOrDefault("runbook_url"), "Runbook");
        foreach (var alert in incident.Alerts.Where(a => a.Status == "firing").Take(20))
            Add(alert.Annotations.GetValueOrDefault("runbook_url"), "Runbook");
        Add(incident.Alerts.FirstOrDefault(a => a.Status == "firing" && a.GeneratorUrl.Length > 0)?.GeneratorUrl
            ?? incident.Alerts.FirstOrDefault(a => a.GeneratorUrl.Length > 0)?.GeneratorUrl, "Prometheus graph");
        Add(options.GrafanaUrl, "Grafana");
        return links;
    }

    /// <summary>A link target as PagerDuty gets it: an absolute http(s) URL, percent-encoded; null for anything else.</summary>
    internal static string? Href(string? url) => Hrefs.Http(url, MaxHrefLength);

    private static JsonObject AlertDetails(AlertView alert)
    {
        var node = new JsonObject
        {
            ["status"] = alert.Status,
            ["labels"] = Map(alert.Labels),
            ["annotations"] = Map(alert.Annotations),
            ["startsAt"] = alert.StartsAt,
        };
        if (alert.EndsAt is not null) node["endsAt"] = alert.EndsAt;
        if (alert.GeneratorUrl.Length > 0) node["generatorURL"] = Truncate(alert.GeneratorUrl, MaxValueLength);
        return node;
    }

    private static JsonObject Map(IReadOnlyDictionary<string, string> values)
    {
        // Indexer, not Add: two long names truncated alike must not throw and block the page.
        var map = new JsonObject();
        foreach (var (key, value) in values.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            map[Truncate(key, MaxFieldLength)] = Truncate(value, MaxValueLength);
        return map;
    }

    private static int Bytes(JsonNode node) => Encoding.UTF8.GetByteCount(node.ToJsonString(Json));

    internal static string Truncate(string text, int max) => TextLimits.Truncate(text, max);
}
