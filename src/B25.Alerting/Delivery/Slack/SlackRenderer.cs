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

    private readonly Presentation.IncidentPresenter _presenter;

    public SlackRenderer(IOptions<SlackOptions> options, IOptions<TemplateOptions> templates, Presentation.IncidentPresenter presenter)
    {
        _options = options.Value;
        _presenter = presenter;
        var folder = Path.Combine(templates.Value.ResolvedPath, "slack");
        _incident = Load(folder, "incident.sbn");
        _incidentText = Load(folder, "incident-text.sbn");
        _change = Load(folder, "change.sbn");
    }

    public SlackMessage RenderIncident(IncidentView incident)
    {
        var p = _presenter.Present(incident, _options.MaxAlertsShown);
        var stateWord = p.Resolved ? "RESOLVED" : "FIRING";
        var model = new
        {
            header = SlackText.Truncate($"{stateWord}: {SlackText.Escape(p.Headline)}", MaxHeaderText),
            headline = SlackText.Escape(p.Headline),
            state_icon = p.Resolved ? ":large_green_circle:" : ":red_circle:",
            state_word = stateWord,
            summary = Summary(p),
            context_line = ContextLine(incident, p),
            logs = Logs(p),
            firing_count = p.FiringCount,
            resolved_count = p.ResolvedCount,
            hidden_alerts = p.HiddenAlerts,
            truncated_alerts = p.TruncatedAlerts,
            alerts = p.Alerts.Select(AlertModel).ToList(),
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

    /// <summary>The main section: what is wrong, the live value, what to do first, and what the alerts share.</summary>
    private static string Summary(Presentation.IncidentPresentation p)
    {
        var lines = new List<string>();
        if (p.Summary.Length > 0) lines.Add($"*{SlackText.Escape(p.Summary)}*");
        if (p.Description.Length > 0) lines.Add(SlackText.Escape(p.Description));
        if (p.ValueLine is not null) lines.Add($":chart_with_upwards_trend: {SlackText.Escape(p.ValueLine)}");
        if (p.FirstAction is not null && !p.Resolved) lines.Add($":point_right: *First action:* {SlackText.Escape(p.FirstAction)}");
        var state = p.Resolved
            ? $":large_green_circle: *Resolved* ({SlackText.Escape(p.Duration)}): {p.ResolvedCount} alert(s)."
            : $":red_circle: *{p.FiringCount} firing*, {p.ResolvedCount} resolved · {SlackText.Escape(p.Duration)}";
        if (p.Severity is not null) state += $" · severity *{SlackText.Escape(p.Severity)}*";
        lines.Add(state);
        if (p.CommonLabels.Count > 0)
            lines.Add(string.Join(" ", p.CommonLabels.Select(l => $"`{SlackText.Escape(l.Key)}={SlackText.Escape(l.Value)}`")));
        var links = string.Join(" · ", p.Links.Select(l => SlackText.Link(l.Url, l.Text)).Where(l => l.Length > 0));
        if (links.Length > 0) lines.Add(links);
        return string.Join("\n", lines);
    }

    private static string ContextLine(IncidentView incident, Presentation.IncidentPresentation p)
    {
        var parts = new List<string>
        {
            $"Started {p.StartedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC",
            $"receiver `{SlackText.Escape(incident.Receiver)}`",
            $"incident `{incident.Id}`",
        };
        if (p.ContextNote is not null) parts.Add(SlackText.Escape(p.ContextNote));
        return string.Join(" · ", parts);
    }

    /// <summary>The service's latest warnings and errors, as a code block (empty when there are none).</summary>
    private static string Logs(Presentation.IncidentPresentation p)
    {
        if (p.Logs is not { Lines.Count: > 0 } logs) return "";
        var lines = logs.Lines.Take(5).Select(l =>
            $"{l.Time.UtcDateTime.ToString("HH:mm:ss", CultureInfo.InvariantCulture)} {SlackText.Truncate(l.Line.ReplaceLineEndings(" ").Replace('`', '\''), 300)}");
        // A code block shows text as it is, but Slack still reads its control sequences: escaped.
        return SlackText.Truncate(
            $"Recent warnings and errors of *{SlackText.Escape(logs.Service)}*:\n```{SlackText.Escape(string.Join("\n", lines))}```", 1500);
    }

    private static object AlertModel(Presentation.AlertPresentation alert)
    {
        var links = alert.Links.Select(l => SlackText.Link(l.Url, l.Text)).Where(l => l.Length > 0);
        var details = string.Join(" · ", new[] { SlackText.Escape(alert.Duration) }.Concat(links).Where(p => p.Length > 0));
        return new
        {
            name = SlackText.Escape(alert.DisplayName),
            status_icon = alert.Firing ? ":red_circle:" : ":large_green_circle:",
            value = alert.ValueLine is null ? "" : SlackText.Escape(alert.ValueLine),
            summary = SlackText.Truncate(SlackText.Escape(alert.Summary), 500),
            description = SlackText.Truncate(SlackText.Escape(alert.Description), 1000),
            details = SlackText.Truncate(details, 1200),
        };
    }

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
