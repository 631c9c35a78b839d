using System.Globalization;
using System.Net;
using B25.Alerting.Delivery.Slack;
using Microsoft.Extensions.Options;
using Scriban;
using Scriban.Runtime;

namespace B25.Alerting.Delivery.Email;

/// <summary>One mail's content: the subject line and both parts of multipart/alternative.</summary>
internal sealed record EmailContent(string Subject, string Text, string Html);

/// <summary>
/// Renders incident mails from the Scriban templates in templates/email. Alert labels and annotations
/// are data: passed in as values (HTML-encoded for the HTML part), never parsed as template source.
/// </summary>
internal sealed class EmailRenderer
{
    public const int MaxSubjectLength = 200;

    private readonly Template _subject;
    private readonly Dictionary<string, (Template Text, Template Html)> _bodies;
    private readonly SmtpOptions _options;

    public EmailRenderer(IOptions<SmtpOptions> options, IOptions<TemplateOptions> templates)
    {
        _options = options.Value;
        var folder = Path.Combine(templates.Value.ResolvedPath, "email");
        _subject = Load(folder, "subject.sbn");
        _bodies = new Dictionary<string, (Template, Template)>
        {
            [EmailKinds.Opened] = (Load(folder, "opened.txt.sbn"), Load(folder, "opened.html.sbn")),
            [EmailKinds.Closed] = (Load(folder, "closed.txt.sbn"), Load(folder, "closed.html.sbn")),
        };
    }

    /// <param name="kind">opened or closed.</param>
    /// <param name="openedUnsent">A closed mail whose opened mail was never sent: it must tell the whole story.</param>
    public EmailContent Render(IncidentView incident, string kind, bool openedUnsent = false)
    {
        if (!_bodies.TryGetValue(kind, out var templates))
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "no email template for this delivery kind");
        var subject = Render(_subject, Model(incident, kind, openedUnsent, html: false));
        return new EmailContent(
            Header(subject),
            Tidy(Render(templates.Text, Model(incident, kind, openedUnsent, html: false))),
            Render(templates.Html, Model(incident, kind, openedUnsent, html: true)));
    }

    /// <summary>The words after the state in a subject: alertname, then the values of the other group labels in key order, e.g. "HighErrorRate order-execution".</summary>
    internal static string Title(IncidentView incident)
    {
        var labels = incident.GroupLabels.Count > 0 ? incident.GroupLabels : incident.CommonLabels;
        var name = labels.GetValueOrDefault("alertname") ?? incident.CommonLabels.GetValueOrDefault("alertname");
        var values = labels.Where(l => l.Key is not ("alertname" or "severity"))
            .OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Value).ToList();
        // Grouped by alertname only (the usual case): the service the alerts share tells them apart in an inbox.
        if (values.Count == 0 && incident.CommonLabels.TryGetValue("service", out var service)) values.Add(service);
        var words = new[] { name }.Concat(values).Where(w => !string.IsNullOrWhiteSpace(w)).ToList();
        return words.Count > 0 ? string.Join(" ", words!) : incident.GroupKey;
    }

    internal static string Duration(TimeSpan span) =>
        span.TotalDays >= 1 ? $"{(int)span.TotalDays}d {span.Hours}h"
        : span.TotalHours >= 1 ? $"{(int)span.TotalHours}h {span.Minutes}m"
        : span.TotalMinutes >= 1 ? $"{(int)span.TotalMinutes}m"
        : $"{Math.Max(0, (int)span.TotalSeconds)}s";

    /// <summary>A subject is one header line: no line breaks or control characters from alert data, bounded length.</summary>
    internal static string Header(string value)
    {
        var chars = value.Select(c => char.IsControl(c) ? ' ' : c).ToArray();
        var line = string.Join(" ", new string(chars).Split(' ', StringSplitOptions.RemoveEmptyEntries));
        return line.Length <= MaxSubjectLength ? line : string.Concat(line.AsSpan(0, MaxSubjectLength - 1), "…");
    }

    private object Model(IncidentView incident, string kind, bool openedUnsent, bool html)
    {
        string E(string? value) => html ? WebUtility.HtmlEncode(value ?? "") : value ?? "";
        string Url(string? value) => SafeUrl(value) is { } url ? E(url) : "";

        var closedAt = incident.ClosedAt ?? incident.OpenedAt;
        var shown = incident.Alerts.Take(_options.MaxAlertsShown).ToList();
        var summary = incident.CommonAnnotations.GetValueOrDefault("summary");
        return new
        {
            kind,
            closed = kind == EmailKinds.Closed,
            opened_unsent = openedUnsent,
            title = E(Title(incident)),
            severity = E(incident.CommonLabels.GetValueOrDefault("severity", "")),
            summary = E(summary),
            description = E(incident.CommonAnnotations.GetValueOrDefault("description", "")),
            runbook_url = Url(incident.CommonAnnotations.GetValueOrDefault("runbook_url")),
            firing_count = incident.FiringCount,
            resolved_count = incident.ResolvedCount,
            alert_count = incident.FiringCount + incident.ResolvedCount,
            hidden_alerts = Math.Max(0, incident.FiringCount + incident.ResolvedCount - shown.Count),
            opened_at = Utc(incident.OpenedAt),
            closed_at = Utc(closedAt),
            duration = Duration(closedAt - incident.OpenedAt),
            receiver = E(incident.Receiver),
            incident_id = E(incident.Id),
            alertmanager_url = Url(incident.ExternalUrl),
            alerts = shown.Select(a => new
            {
                name = E(a.Labels.GetValueOrDefault("alertname", "alert")),
                firing = a.Status == "firing",
                status = a.Status == "firing" ? "FIRING" : "RESOLVED",
                labels = a.Labels.Where(l => l.Key != "alertname").OrderBy(l => l.Key, StringComparer.Ordinal)
                    .Select(l => new { key = E(l.Key), value = E(l.Value) }).ToList(),
                summary = E(a.Annotations.GetValueOrDefault("summary", "")),
                description = E(a.Annotations.GetValueOrDefault("description", "")),
                starts_at = Utc(a.StartsAt),
                ends_at = a.Status == "firing" ? "" : Utc(a.EndsAt),
                runbook_url = Url(a.Annotations.GetValueOrDefault("runbook_url")),
                graph_url = Url(a.GeneratorUrl),
            }).ToList(),
        };
    }

    /// <summary>Plain text as a person reads it: no trailing spaces, at most one blank line in a row.</summary>
    internal static string Tidy(string text)
    {
        var lines = new List<string>();
        foreach (var line in text.Replace("\r\n", "\n").Split('\n').Select(l => l.TrimEnd()))
        {
            if (line.Length == 0 && (lines.Count == 0 || lines[^1].Length == 0)) continue;
            lines.Add(line);
        }
        while (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        return string.Join("\n", lines) + "\n";
    }

    /// <summary>Only absolute http(s) links: a javascript: or data: URL from an annotation stays out of the mail.</summary>
    private static string? SafeUrl(string? value) =>
        !string.IsNullOrWhiteSpace(value) && Uri.TryCreate(value.Trim(), UriKind.Absolute, out var uri)
        && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            ? uri.AbsoluteUri
            : null;

    private static string Utc(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC";

    private static string Utc(string? at) =>
        DateTimeOffset.TryParse(at, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed) ? Utc(parsed) : at ?? "";

    private static Template Load(string folder, string name)
    {
        var path = Path.Combine(folder, name);
        if (!File.Exists(path))
            throw new InvalidOperationException($"Email template {path} is missing (Templates:Path points at the templates folder).");
        var template = Template.Parse(File.ReadAllText(path), path);
        if (template.HasErrors)
            throw new InvalidOperationException($"Email template {path} does not parse: {string.Join("; ", template.Messages)}");
        return template;
    }

    private static string Render(Template template, object model)
    {
        var globals = new ScriptObject();
        globals.Import(model, renamer: member => member.Name);
        var context = new TemplateContext { StrictVariables = true, MemberRenamer = member => member.Name, LoopLimit = 100_000 };
        context.PushGlobal(globals);
        return template.Render(context);
    }
}

internal static class EmailKinds
{
    public const string Opened = "opened";
    public const string Closed = "closed";
}
