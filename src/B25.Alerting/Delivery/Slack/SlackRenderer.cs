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
    public const int MaxFields = 10;
    public const int MaxFieldText = 2000;
    public const int MaxContextElements = 10;
    public const int MaxButtonText = 75;

    /// <summary>
    /// Slack refuses a message whose blocks hold too many characters in all (<c>msg_blocks_too_long</c>). Slack
    /// documents no number: its SDK maintainers put it at about 12,000 text characters with a buffer for the
    /// block containers, and measurements put a divider at about 125 characters of it (slackapi/bolt-js #2509,
    /// #2867). Counted that way, every text plus <see cref="BlockCost"/> per block, a message stays under this.
    /// </summary>
    public const int MaxBlocksCharacters = 10_000;

    public const int BlockCost = 125;

    /// <summary>Scriban's builtins and <c>json</c> (a value as a JSON string literal), built once for every render.</summary>
    private static readonly Presentation.TemplateRendering Templates =
        new(("json", new Func<object?, string>(value => JsonSerializer.Serialize(value?.ToString() ?? ""))));

    private readonly Template _incident;
    private readonly Template _incidentText;
    private readonly Template _change;
    private readonly SlackOptions _options;

    private readonly Presentation.IncidentPresenter _presenter;

    private readonly TimeProvider _time;

    public SlackRenderer(IOptions<SlackOptions> options, IOptions<TemplateOptions> templates, Presentation.IncidentPresenter presenter,
        TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
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
        var context = Templates.Context(new ScriptObject
        {
            ["header"] = TextLimits.Truncate($"{stateWord}: {SlackText.Escape(p.Headline)}", MaxHeaderText),
            ["headline"] = SlackText.Escape(p.Headline),
            ["state_icon"] = p.Resolved ? ":large_green_circle:" : ":red_circle:",
            ["state_word"] = stateWord,
            ["summary"] = Summary(p) + Handling(incident, p) + EmergencyStops(incident),
            ["context_line"] = ContextLine(incident, p),
            ["logs"] = Logs(p),
            ["firing_count"] = p.FiringCount,
            ["resolved_count"] = p.ResolvedCount,
            ["hidden_alerts"] = p.HiddenAlerts,
            ["truncated_alerts"] = p.TruncatedAlerts,
            ["alerts"] = p.Alerts.Select(AlertModel).ToList(),
        });
        var blocksJson = Presentation.TemplateRendering.Render(context, _incident);
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
        if (Actions(incident, p) is { } actions) blocks.Add(actions);
        var text = SlackText.Truncate(Presentation.TemplateRendering.Render(context, _incidentText).Trim(), MaxFallbackText);
        return new SlackMessage(text, EnforceLimits(blocks));
    }

    public string RenderChange(IncidentView incident, IReadOnlyList<ChangeSummary> changes)
    {
        var context = Templates.Context(new ScriptObject
        {
            ["closed"] = incident.State == "closed",
            ["firing_count"] = incident.FiringCount,
            ["resolved_count"] = incident.ResolvedCount,
            ["changes"] = changes.Select(c => Presentation.TemplateRendering.Data(new ScriptObject
            {
                ["kind"] = c.Kind,
                ["joined_count"] = c.JoinedCount,
                ["resolved_count"] = c.ResolvedCount,
                ["joined"] = c.Joined.Select(SlackText.Escape).ToList(),
                ["resolved"] = c.Resolved.Select(SlackText.Escape).ToList(),
            })).ToList(),
        });
        return SlackText.Truncate(Presentation.TemplateRendering.Render(context, _change).Trim(), MaxSectionText);
    }

    /// <summary>
    /// Block Kit's limits: 50 blocks; 3,000 characters per section, 150 per header, 10 fields of 2,000, 10 context
    /// elements, 75 per button; and <see cref="MaxBlocksCharacters"/> in all. What does not fit is left out from
    /// the end of the alert list (the blocks between the first divider and the closing context and actions
    /// blocks), and a context line says how many alerts (sections) were left out; the header, summary and
    /// closing blocks stay.
    /// </summary>
    internal static JsonArray EnforceLimits(JsonArray blocks)
    {
        foreach (var block in blocks.OfType<JsonObject>()) LimitBlock(block);

        var bodyStart = 0;
        while (bodyStart < blocks.Count && BlockType(blocks[bodyStart]) != "divider") bodyStart++;
        var tailStart = blocks.Count;
        while (tailStart > bodyStart && BlockType(blocks[tailStart - 1]) is "context" or "actions") tailStart--;

        var costs = blocks.Select(Cost).ToList();
        var total = costs.Sum();
        var bodyEnd = tailStart;
        var leftOut = 0;
        bool Fits() => leftOut == 0
            ? blocks.Count - (tailStart - bodyEnd) <= MaxBlocks && total <= MaxBlocksCharacters
            : blocks.Count - (tailStart - bodyEnd) + 1 <= MaxBlocks && total + Cost(LeftOutNote(leftOut)) <= MaxBlocksCharacters;
        while (!Fits() && bodyEnd > bodyStart)
        {
            bodyEnd--;
            total -= costs[bodyEnd];
            if (BlockType(blocks[bodyEnd]) == "section") leftOut++;
            // A divider left at the end of the list would separate nothing.
            while (bodyEnd > bodyStart && BlockType(blocks[bodyEnd - 1]) == "divider")
                total -= costs[--bodyEnd];
        }
        for (var i = tailStart - 1; i >= bodyEnd; i--) blocks.RemoveAt(i);
        if (leftOut > 0) blocks.Insert(bodyEnd, LeftOutNote(leftOut));

        // Only a template without an alert list, or with huge head or closing lines, gets here.
        if (blocks.Count > MaxBlocks)
        {
            var omitted = blocks.Count - (MaxBlocks - 1);
            while (blocks.Count > MaxBlocks - 1) blocks.RemoveAt(blocks.Count - 1);
            blocks.Add(Note($"…{omitted} more block(s) left out to fit Slack's limits."));
        }
        total = blocks.Sum(Cost);
        for (var i = blocks.Count - 1; i >= 0 && total > MaxBlocksCharacters; i--)
        {
            foreach (var (owner, text) in Texts(blocks[i]).OrderByDescending(t => t.Text.Length).ToList())
            {
                var excess = total - MaxBlocksCharacters;
                if (excess <= 0) break;
                var shorter = Shorten(owner, text, Math.Max(1, text.Length - excess));
                owner["text"] = shorter;
                total -= text.Length - shorter.Length;
            }
        }
        return blocks;
    }

    private static void LimitBlock(JsonObject block)
    {
        switch (BlockType(block))
        {
            case "header":
                LimitText(block["text"] as JsonObject, MaxHeaderText);
                break;
            case "section":
                LimitText(block["text"] as JsonObject, MaxSectionText);
                if (block["fields"] is JsonArray fields)
                {
                    while (fields.Count > MaxFields) fields.RemoveAt(fields.Count - 1);
                    foreach (var field in fields.OfType<JsonObject>()) LimitText(field, MaxFieldText);
                }
                break;
            case "context":
                if (block["elements"] is JsonArray elements)
                {
                    while (elements.Count > MaxContextElements) elements.RemoveAt(elements.Count - 1);
                    foreach (var element in elements.OfType<JsonObject>()) LimitText(element, MaxSectionText);
                }
                break;
            case "actions":
                if (block["elements"] is JsonArray actions)
                    foreach (var element in actions.OfType<JsonObject>()) LimitText(element["text"] as JsonObject, MaxButtonText);
                break;
        }
    }

    /// <summary>Cuts a text object's (or context element's) "text" to <paramref name="max"/> characters.</summary>
    private static void LimitText(JsonObject? owner, int max)
    {
        if (owner?["text"] is not JsonValue value || !value.TryGetValue<string>(out var text)) return;
        // Kept as a string from here on, cut or not: a value of the parsed JSON decodes its text again at every read, and the
        // limits below read every text two or three more times (a tenth of the service's allocations per new incident).
        owner["text"] = text.Length > max ? Shorten(owner, text, max) : text;
    }

    /// <summary>mrkdwn is cut around Slack's links and entities; plain_text holds none (a '&lt;' in it is data).</summary>
    private static string Shorten(JsonObject owner, string text, int max) =>
        owner["type"] is JsonValue t && t.TryGetValue<string>(out var type) && type == "plain_text"
            ? TextLimits.Truncate(text, max)
            : SlackText.Truncate(text, max);

    private static string? BlockType(JsonNode? block) =>
        block is JsonObject o && o["type"] is JsonValue v && v.TryGetValue<string>(out var type) ? type : null;

    /// <summary>What a block counts against <see cref="MaxBlocksCharacters"/>: its texts and its container.</summary>
    private static int Cost(JsonNode? block) => BlockCost + TextLength(block);

    /// <summary>The length of every "text" string in a node (those <see cref="Texts"/> finds), counted without an iterator per node.</summary>
    private static int TextLength(JsonNode? node)
    {
        var length = 0;
        switch (node)
        {
            case JsonObject o:
                foreach (var (key, child) in o)
                    length += key == "text" && child is JsonValue v && v.TryGetValue<string>(out var text) ? text.Length : TextLength(child);
                break;
            case JsonArray a:
                foreach (var child in a) length += TextLength(child);
                break;
        }
        return length;
    }

    /// <summary>Every "text" string in a block, with the object that holds it.</summary>
    private static IEnumerable<(JsonObject Owner, string Text)> Texts(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (key, child) in o)
                {
                    if (key == "text" && child is JsonValue v && v.TryGetValue<string>(out var text))
                        yield return (o, text);
                    else
                        foreach (var t in Texts(child)) yield return t;
                }
                break;
            case JsonArray a:
                foreach (var child in a)
                    foreach (var t in Texts(child)) yield return t;
                break;
        }
    }

    private static JsonObject LeftOutNote(int alerts) =>
        Note($"…{alerts} more alert(s) left out here to fit Slack's message limits.");

    private static JsonObject Note(string text) => new()
    {
        ["type"] = "context",
        ["elements"] = new JsonArray(new JsonObject { ["type"] = "mrkdwn", ["text"] = text }),
    };

    /// <summary>Who handles the incident and its silence, as lines under the summary ("Acknowledged by @jane at 03:12").</summary>
    private string Handling(IncidentView incident, Presentation.IncidentPresentation p)
    {
        if (incident.Handling is not { } h) return "";
        var lines = new List<string>();
        if (h.Acknowledged)
            lines.Add($":eyes: *Acknowledged* by {Incidents.IncidentActions.Who(h.AcknowledgedBy ?? "", h.AcknowledgedVia ?? "")} at {Clock(h.AcknowledgedAt!.Value)}");
        if (!p.Resolved && h.SilencedAt(_time.GetUtcNow()))
            lines.Add($":mute: *Silenced until {Clock(h.SilencedUntil!.Value)}* by {Incidents.IncidentActions.Who(h.SilencedBy ?? "", "slack")}");
        return lines.Count == 0 ? "" : "\n" + string.Join("\n", lines);
    }

    /// <summary>Emergency stops the message shows, the newest last; older ones are counted, not listed.</summary>
    public const int MaxStopLines = 5;

    /// <summary>
    /// The incident's emergency stops as lines under the summary ("Emergency stop requested ... / acknowledged by
    /// risk-manager"): the routine course of a stop is shown by editing the message, which costs the channel no message
    /// and notifies nobody. What needs people now (the cap reached, a rejection, no answer) is a thread note as well.
    /// </summary>
    private string EmergencyStops(IncidentView incident)
    {
        if (incident.EmergencyStops is not { Count: > 0 } stops) return "";
        var lines = new List<string>();
        if (stops.Count > MaxStopLines)
            lines.Add($"…{(stops.Count >= Storage.IncidentReadModel.MaxStopsShown ? "at least " : "")}{stops.Count - MaxStopLines} earlier emergency stop(s): see `GET /api/emergency-stops`");
        lines.AddRange(stops.Skip(Math.Max(0, stops.Count - MaxStopLines)).Select(StopLine));
        return "\n" + string.Join("\n", lines);
    }

    private string StopLine(EmergencyStopView stop)
    {
        var scope = StopScope(stop.Scope);
        var command = $"(command `{SlackText.Escape(stop.CommandId)}`)";
        var answer = string.IsNullOrWhiteSpace(stop.Answer) ? "" : ": " + SlackText.Escape(Presentation.ControlCharacters.Escape(stop.Answer));
        var by = SlackText.Escape(Presentation.ControlCharacters.Escape(stop.AnsweredBy ?? "the risk manager"));
        var at = stop.AnsweredAt is { } answeredAt ? " at " + Clock(answeredAt) : "";
        return stop.Status switch
        {
            "requested" or "requesting" when stop.UnansweredPaged =>
                $":warning: Emergency stop of {scope} requested at {Clock(stop.RequestedAt)}: *no answer from the risk manager in time*, it may not have happened {command}",
            "requested" => $":rotating_light: Emergency stop of {scope} requested from the risk manager at {Clock(stop.RequestedAt)}, waiting for its answer {command}",
            "requesting" => $":hourglass_flowing_sand: Emergency stop of {scope} being sent to the risk manager {command}",
            "acknowledged" => $":white_check_mark: Emergency stop of {scope} requested at {Clock(stop.RequestedAt)}, *acknowledged* by {by}{at}{answer} {command}",
            "rejected" => $":x: Emergency stop of {scope} *rejected* by {by}{at}{answer} {command}",
            "dry-run" => $":test_tube: DRY RUN: an emergency stop of {scope} would have been requested from the risk manager {command}",
            "suppressed" => $":warning: Emergency stop of {scope} *NOT requested*: the cap of stops per window was reached. Act by hand {command}",
            _ => $"Emergency stop of {scope}: {SlackText.Escape(stop.Status)} {command}",
        };
    }

    /// <summary>What an emergency stop stops, as Slack shows it: its scope labels, or everything when the alert names none.</summary>
    internal static string StopScope(IReadOnlyDictionary<string, string> scope) =>
        scope.Count == 0
            ? "*everything* (the alert names no exchange, symbol, strategy, account or service)"
            : string.Join(", ", scope.Select(kv =>
                $"`{SlackText.Escape(Presentation.ControlCharacters.Escape(kv.Key))}={SlackText.Escape(Presentation.ControlCharacters.Escape(kv.Value))}`"));

    private string Clock(DateTimeOffset at) => at.UtcDateTime.ToString("HH:mm 'UTC'", CultureInfo.InvariantCulture) +
        (at.UtcDateTime.Date == _time.GetUtcNow().UtcDateTime.Date ? "" : at.UtcDateTime.ToString(" (yyyy-MM-dd)", CultureInfo.InvariantCulture));

    /// <summary>Action ids of the incident message's controls, stable: <c>POST /slack/interactions</c> dispatches on them.</summary>
    internal static class ActionIds
    {
        public const string Acknowledge = "acknowledge";
        public const string Silence = "silence";
        public const string Unsilence = "unsilence";
        public const string Runbook = "runbook";
        public const string Grafana = "grafana";
    }

    /// <summary>
    /// The controls at the foot of the message: acknowledge (until someone did), silence for 1 h, 4 h or 24 h, or unsilence
    /// while silenced, each carrying the incident id; link buttons to the runbook and Grafana. Only with a signing secret
    /// (<see cref="SlackOptions.Interactive"/>): without one nobody could receive the clicks.
    /// </summary>
    private JsonObject? Actions(IncidentView incident, Presentation.IncidentPresentation p)
    {
        if (!_options.Interactive) return null;
        var elements = new JsonArray();
        var open = incident.State != "closed";
        var handling = incident.Handling;
        if (open && handling?.Acknowledged != true)
            elements.Add(new JsonObject
            {
                ["type"] = "button", ["action_id"] = ActionIds.Acknowledge, ["value"] = incident.Id, ["style"] = "primary",
                ["text"] = new JsonObject { ["type"] = "plain_text", ["text"] = "Acknowledge" },
            });
        if (open && handling?.SilencedAt(_time.GetUtcNow()) == true)
            elements.Add(new JsonObject
            {
                ["type"] = "button", ["action_id"] = ActionIds.Unsilence, ["value"] = incident.Id,
                ["text"] = new JsonObject { ["type"] = "plain_text", ["text"] = "Unsilence" },
            });
        else if (open)
            elements.Add(new JsonObject
            {
                ["type"] = "static_select", ["action_id"] = ActionIds.Silence,
                ["placeholder"] = new JsonObject { ["type"] = "plain_text", ["text"] = "Silence for…" },
                ["options"] = new JsonArray(Incidents.IncidentActions.SilenceDurations.Keys.Select(d => (JsonNode)new JsonObject
                {
                    ["text"] = new JsonObject { ["type"] = "plain_text", ["text"] = d },
                    ["value"] = $"{incident.Id}|{d}",
                }).ToArray()),
            });
        foreach (var (text, id) in new[] { ("Runbook", ActionIds.Runbook), ("Grafana", ActionIds.Grafana) })
            // The incident's link, else the first alert's (alerts of one group usually share their runbook).
            if ((p.Links.FirstOrDefault(l => l.Text == text) ?? p.Alerts.SelectMany(a => a.Links).FirstOrDefault(l => l.Text == text)) is { } link
                && Uri.TryCreate(link.Url, UriKind.Absolute, out var url)
                && url.Scheme is "http" or "https" && link.Url.Length <= 3000)
                elements.Add(new JsonObject
                {
                    ["type"] = "button", ["action_id"] = id, ["url"] = link.Url, ["value"] = incident.Id,
                    ["text"] = new JsonObject { ["type"] = "plain_text", ["text"] = text },
                });
        return elements.Count == 0 ? null : new JsonObject { ["type"] = "actions", ["block_id"] = "b25_incident_actions", ["elements"] = elements };
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

    private static ScriptObject AlertModel(Presentation.AlertPresentation alert)
    {
        var links = alert.Links.Select(l => SlackText.Link(l.Url, l.Text)).Where(l => l.Length > 0);
        var details = string.Join(" · ", new[] { SlackText.Escape(alert.Duration) }.Concat(links).Where(p => p.Length > 0));
        return Presentation.TemplateRendering.Data(new ScriptObject
        {
            ["name"] = SlackText.Escape(alert.DisplayName),
            ["status_icon"] = alert.Firing ? ":red_circle:" : ":large_green_circle:",
            ["value"] = alert.ValueLine is null ? "" : SlackText.Escape(alert.ValueLine),
            ["summary"] = SlackText.Truncate(SlackText.Escape(alert.Summary), 500),
            ["description"] = SlackText.Truncate(SlackText.Escape(alert.Description), 1000),
            ["details"] = SlackText.Truncate(details, 1200),
        });
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
}

internal sealed class TemplateOptions
{
    public const string Section = "Templates";

    /// <summary>Folder holding the Scriban templates; relative paths resolve against the service's folder.</summary>
    public string Path { get; set; } = "templates";

    public string ResolvedPath => System.IO.Path.IsPathRooted(Path) ? Path : System.IO.Path.Combine(AppContext.BaseDirectory, Path);
}
