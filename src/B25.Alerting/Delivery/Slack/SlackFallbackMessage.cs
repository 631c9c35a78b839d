using System.Text.Json.Nodes;

namespace B25.Alerting.Delivery.Slack;

/// <summary>
/// The minimal incident message, sent when Slack refuses the rich one for its form or the templates cannot
/// render it: built here without a template, one short section whose text is also the notification text,
/// so nothing in it can be refused. It names the incident, its state and counts, and links to Alertmanager
/// and the runbook. A page is never lost to formatting.
/// </summary>
internal static class SlackFallbackMessage
{
    private const int MaxTitle = 300;
    private const int MaxSummary = 500;

    /// <param name="refusedBySlack">Slack refused the rich message (else the templates could not render it).</param>
    public static SlackMessage Render(IncidentView incident, bool refusedBySlack)
    {
        var closed = incident.State == "closed";
        var lines = new List<string>
        {
            $"{(closed ? ":large_green_circle: *RESOLVED*" : ":red_circle: *FIRING*")}: {SlackText.Escape(TextLimits.Truncate(Title(incident), MaxTitle))}",
        };
        if (incident.CommonAnnotations.GetValueOrDefault("summary") is { Length: > 0 } summary)
            lines.Add(SlackText.Escape(TextLimits.Truncate(summary.ReplaceLineEndings(" "), MaxSummary)));
        lines.Add($"{incident.FiringCount} firing, {incident.ResolvedCount} resolved · incident `{SlackText.Escape(incident.Id)}`");
        // Emergency stops are shown only on the message (no thread note for a routine one): keep their state here too.
        if (incident.EmergencyStops is { Count: > 0 } stops)
            lines.Add("Emergency stop: " + string.Join(", ", stops.TakeLast(3).Select(s => $"{SlackText.Escape(s.Status)}{(s.UnansweredPaged ? " (no answer in time)" : "")}")) +
                      (stops.Count > 3 ? $" (+{stops.Count - 3} earlier)" : "") + " · `GET /api/emergency-stops`");
        var links = new[]
        {
            SlackText.Link(incident.ExternalUrl, "Alertmanager"),
            SlackText.Link(incident.CommonAnnotations.GetValueOrDefault("runbook_url"), "Runbook"),
        }.Where(l => l.Length > 0).ToList();
        if (links.Count > 0) lines.Add(string.Join(" · ", links));
        lines.Add(refusedBySlack ? "_Shortened: Slack refused the full message._" : "_Shortened: the full message could not be rendered._");
        var text = SlackText.Truncate(string.Join("\n", lines), SlackRenderer.MaxSectionText);
        return new SlackMessage(text, new JsonArray(new JsonObject
        {
            ["type"] = "section",
            ["text"] = new JsonObject { ["type"] = "mrkdwn", ["text"] = text },
        }));
    }

    // Kept independent of the templates on purpose: this message must go out when they fail.
    private static string Title(IncidentView incident)
    {
        var labels = incident.GroupLabels.Count > 0 ? incident.GroupLabels : incident.CommonLabels;
        var name = labels.GetValueOrDefault("alertname") ?? incident.CommonLabels.GetValueOrDefault("alertname");
        var rest = string.Join(", ", labels.Where(l => l.Key != "alertname").OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}"));
        if (string.IsNullOrEmpty(name)) return rest.Length > 0 ? rest : incident.GroupKey;
        return rest.Length > 0 ? $"{name} ({rest})" : name;
    }
}
