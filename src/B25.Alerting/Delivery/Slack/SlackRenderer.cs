using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Scriban;
using Scriban.Runtime;

namespace B25.Alerting.Delivery.Slack;

internal sealed record SlackMessage(string Text, JsonArray Blocks);

/// <summary>
/// Renders incidents as Block Kit from the Scriban templates in templates/slack. Alert labels and
/// annotations are escaped for Slack and passed in as data, never as template source. The result is
/// checked against Block Kit's limits, so a 500-alert incident still posts.
/// </summary>
internal sealed class SlackRenderer
{
    public const int MaxBlocks = 50;
    public const int MaxSectionText = 3000;
    public const int MaxHeaderText = 150;
    public const int MaxFallbackText = 3000;

    private readonly Template _incident;
    private readonly Template _incidentText;
    private readonly Template _change;
    private readonly SlackOptions _options;

    public SlackRenderer(IOptions<SlackOptions> options, IOptions<TemplateOptions> templates)
    {
        _options = options.Value;
        var folder = Path.Combine(templates.Value.ResolvedPath, "slack");
        _incident = Load(folder, "incident.sbn");
        _incidentText = Load(folder, "incident-text.sbn");
        _change = Load(folder, "change.sbn");
    }

    public SlackMessage RenderIncident(IncidentView incident)
    {
        var resolved = incident.State == "closed";
        var title = Title(incident);
        var shown = incident.Alerts.Take(_options.MaxAlertsShown).ToList();
        var model = new
        {
            header = SlackText.Truncate($"{(resolved ? "RESOLVED" : "FIRING")}: {title}", MaxHeaderText),
            title = SlackText.Escape(title),
            state_icon = resolved ? ":large_green_circle:" : ":red_circle:",
            state_word = resolved ? "RESOLVED" : "FIRING",
            summary = Summary(incident, resolved),
            context_line = ContextLine(incident),
            firing_count = incident.FiringCount,
            resolved_count = incident.ResolvedCount,
            hidden_alerts = Math.Max(0, incident.FiringCount + incident.ResolvedCount - shown.Count),
            alerts = shown.Select(AlertModel).ToList(),
        };
        var blocksJson = Render(_incident, model);
        JsonArray blocks;
        try
        {
            blocks = JsonNode.Parse(blocksJson) as JsonArray
                     ?? throw new InvalidOperationException("templates/slack/incident.sbn must render a JSON array of blocks.");
        }
        catch (JsonException ex)
        {
            throw new InvalidOperationException($"templates/slack/incident.sbn rendered invalid JSON: {ex.Message}", ex);
        }
        var text = SlackText.Truncate(Render(_incidentText, model).Trim(), MaxFallbackText);
        return new SlackMessage(text, EnforceLimits(blocks));
    }

    public string RenderChange(IncidentView incident, IReadOnlyList<ChangeSummary> changes)
    {
        var model = new
        {
            closed = incident.State == "closed",
            firing_count = incident.FiringCount,
            resolved_count = incident.ResolvedCount,
            changes = changes.Select(c => new
            {
                kind = c.Kind,
                joined_count = c.JoinedCount,
                resolved_count = c.ResolvedCount,
                joined = c.Joined.Select(SlackText.Escape).ToList(),
                resolved = c.Resolved.Select(SlackText.Escape).ToList(),
            }).ToList(),
        };
        return SlackText.Truncate(Render(_change, model).Trim(), MaxSectionText);
    }

    /// <summary>Block Kit limits: at most 50 blocks, 3,000 characters per section, 150 per header.</summary>
    internal static JsonArray EnforceLimits(JsonArray blocks)
    {
        foreach (var block in blocks.OfType<JsonObject>())
        {
            var type = block["type"]?.GetValue<string>();
            if (block["text"] is JsonObject text && text["text"] is JsonValue value)
            {
                var max = type == "header" ? MaxHeaderText : MaxSectionText;
                text["text"] = SlackText.Truncate(value.GetValue<string>(), max);
            }
            if (block["elements"] is JsonArray elements)
                foreach (var element in elements.OfType<JsonObject>())
                    if (element["text"] is JsonValue t)
                        element["text"] = SlackText.Truncate(t.GetValue<string>(), MaxSectionText);
        }
        if (blocks.Count <= MaxBlocks) return blocks;
        var omitted = blocks.Count - (MaxBlocks - 1);
        while (blocks.Count > MaxBlocks - 1) blocks.RemoveAt(blocks.Count - 1);
        blocks.Add(new JsonObject
        {
            ["type"] = "context",
            ["elements"] = new JsonArray(new JsonObject { ["type"] = "mrkdwn", ["text"] = $"…{omitted} more block(s) omitted." }),
        });
        return blocks;
    }

    private static string Title(IncidentView incident)
    {
        var labels = incident.GroupLabels.Count > 0 ? incident.GroupLabels : incident.CommonLabels;
        if (labels.Count == 0) return incident.GroupKey;
        var name = labels.TryGetValue("alertname", out var n) ? n : null;
        var rest = string.Join(", ", labels.Where(l => l.Key != "alertname").OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}"));
        return name is null ? rest : rest.Length == 0 ? name : $"{name} ({rest})";
    }

    private static string Summary(IncidentView incident, bool resolved)
    {
        var lines = new List<string>();
        var summary = incident.CommonAnnotations.GetValueOrDefault("summary");
        if (!string.IsNullOrEmpty(summary)) lines.Add(SlackText.Escape(summary));
        lines.Add(resolved
            ? $":large_green_circle: *Resolved* after {Duration((incident.ClosedAt ?? incident.OpenedAt) - incident.OpenedAt)}: {incident.ResolvedCount} alert(s)."
            : $":red_circle: *{incident.FiringCount} firing*, {incident.ResolvedCount} resolved.");
        var severity = incident.CommonLabels.GetValueOrDefault("severity");
        if (!string.IsNullOrEmpty(severity)) lines.Add($"Severity: *{SlackText.Escape(severity)}*");
        var runbook = SlackText.Link(incident.CommonAnnotations.GetValueOrDefault("runbook_url"), "Runbook");
        if (runbook.Length > 0) lines.Add(runbook);
        return string.Join("\n", lines);
    }

    private static string ContextLine(IncidentView incident)
    {
        var parts = new List<string>
        {
            $"Opened {incident.OpenedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC",
            $"receiver `{SlackText.Escape(incident.Receiver)}`",
            $"incident `{incident.Id}`",
        };
        var alertmanager = SlackText.Link(incident.ExternalUrl, "Alertmanager");
        if (alertmanager.Length > 0) parts.Add(alertmanager);
        return string.Join(" · ", parts);
    }

    private static object AlertModel(AlertView alert)
    {
        var labels = string.Join(" ", alert.Labels
            .Where(l => l.Key is not "alertname")
            .OrderBy(l => l.Key, StringComparer.Ordinal)
            .Select(l => $"`{SlackText.Escape(l.Key)}={SlackText.Escape(l.Value)}`"));
        var links = new[]
        {
            SlackText.Link(alert.Annotations.GetValueOrDefault("runbook_url"), "Runbook"),
            SlackText.Link(alert.GeneratorUrl, "Graph"),
        }.Where(l => l.Length > 0);
        var started = DateTimeOffset.TryParse(alert.StartsAt, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var s)
            ? s.UtcDateTime.ToString("HH:mm:ss", CultureInfo.InvariantCulture) + " UTC"
            : alert.StartsAt;
        var details = string.Join(" · ", new[] { labels, $"since {started}" }.Concat(links).Where(p => p.Length > 0));
        return new
        {
            name = SlackText.Escape(alert.Labels.GetValueOrDefault("alertname", "alert")),
            status_icon = alert.Status == "firing" ? ":red_circle:" : ":large_green_circle:",
            summary = SlackText.Truncate(SlackText.Escape(alert.Annotations.GetValueOrDefault("summary", "")), 500),
            description = SlackText.Truncate(SlackText.Escape(alert.Annotations.GetValueOrDefault("description", "")), 1000),
            details = SlackText.Truncate(details, 1200),
        };
    }

    private static string Duration(TimeSpan span) =>
        span.TotalHours >= 1 ? $"{(int)span.TotalHours}h {span.Minutes}m"
        : span.TotalMinutes >= 1 ? $"{span.Minutes}m {span.Seconds}s"
        : $"{Math.Max(0, span.Seconds)}s";

    private static Template Load(string folder, string name)
    {
        var path = Path.Combine(folder, name);
        if (!File.Exists(path))
            throw new InvalidOperationException($"Slack template {path} is missing (Templates:Path points at the templates folder).");
        var template = Template.Parse(File.ReadAllText(path), path);
        if (template.HasErrors)
            throw new InvalidOperationException($"Slack template {path} does not parse: {string.Join("; ", template.Messages)}");
        return template;
    }

    private static string Render(Template template, object model)
    {
        var globals = new ScriptObject();
        globals.Import(model, renamer: member => member.Name);
        globals.Import("json", new Func<object?, string>(value => JsonSerializer.Serialize(value?.ToString() ?? "")));
        var context = new TemplateContext { StrictVariables = true, MemberRenamer = member => member.Name, LoopLimit = 100_000 };
        context.PushGlobal(globals);
        return template.Render(context);
    }
}

internal sealed class TemplateOptions
{
    public const string Section = "Templates";

    /// <summary>Folder holding the Scriban templates; relative paths resolve against the service's folder.</summary>
    public string Path { get; set; } = "templates";

    public string ResolvedPath => System.IO.Path.IsPathRooted(Path) ? Path : System.IO.Path.Combine(AppContext.BaseDirectory, Path);
}
