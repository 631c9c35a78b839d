using System.Globalization;
using System.Net;
using B25.Alerting.Delivery.Slack;
using Microsoft.Extensions.Options;
using Scriban;
using Scriban.Runtime;

namespace B25.Alerting.Delivery.Email;

/// <summary>One mail's content: the subject line and both parts of multipart/alternative.</summary>
/// <param name="Chart">A PNG the HTML part shows inline (Content-ID <see cref="EmailRenderer.ChartContentId"/>), or null.</param>
internal sealed record EmailContent(string Subject, string Text, string Html, byte[]? Chart = null);

/// <summary>
/// Renders incident mails from the Scriban templates in templates/email. Alert labels and annotations
/// are data: passed in as values (HTML-encoded for the HTML part), never parsed as template source.
/// </summary>
internal sealed class EmailRenderer
{
    public const int MaxSubjectLength = 200;

    /// <summary>Scriban's builtins, built once for every render.</summary>
    private static readonly Presentation.TemplateRendering Templates = new();

    private readonly Template _subject;
    private readonly Dictionary<string, (Template Text, Template Html)> _bodies;
    private readonly SmtpOptions _options;

    private readonly Presentation.IncidentPresenter _presenter;
    private readonly ILogger _logger;

    public EmailRenderer(IOptions<SmtpOptions> options, IOptions<TemplateOptions> templates, Presentation.IncidentPresenter presenter,
        ILogger<EmailRenderer> logger)
    {
        _options = options.Value;
        _presenter = presenter;
        _logger = logger;
        var folder = Path.Combine(templates.Value.ResolvedPath, "email");
        _subject = Load(folder, "subject.sbn");
        _bodies = new Dictionary<string, (Template, Template)>
        {
            [EmailKinds.Opened] = (Load(folder, "opened.txt.sbn"), Load(folder, "opened.html.sbn")),
            [EmailKinds.Closed] = (Load(folder, "closed.txt.sbn"), Load(folder, "closed.html.sbn")),
        };
    }

    /// <summary>The Content-ID of the chart image an HTML mail shows inline.</summary>
    public const string ChartContentId = "chart@b25-alerting";

    /// <param name="kind">opened or closed.</param>
    /// <param name="openedUnsent">A closed mail whose opened mail was never sent: it must tell the whole story.</param>
    public EmailContent Render(IncidentView incident, string kind, bool openedUnsent = false)
    {
        if (!_bodies.TryGetValue(kind, out var templates))
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "no email template for this delivery kind");
        incident = Presentation.ControlCharacters.Escape(incident); // the model reads a few labels directly too
        var p = _presenter.Present(incident, _options.MaxAlertsShown);
        var chart = p.ChartMetric is { } metric ? Chart(metric) : null;
        // The subject and the text part read one model, the HTML part its HTML-encoded twin: each set up once.
        var text = Templates.Context(Model(incident, kind, openedUnsent, html: false, p, chart is not null));
        var subject = Presentation.TemplateRendering.Render(text, _subject);
        return new EmailContent(
            Header(subject),
            Tidy(Presentation.TemplateRendering.Render(text, templates.Text)),
            Presentation.TemplateRendering.Render(Templates.Context(Model(incident, kind, openedUnsent, html: true, p, chart is not null)), templates.Html),
            chart);
    }

    /// <summary>The chart of the incident's value, or null when it cannot be drawn (a page never waits on a picture).</summary>
    private byte[]? Chart(Enrichment.AlertMetricContext metric)
    {
        try
        {
            return Enrichment.Charts.ChartRenderer.RenderPng(metric);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            _logger.LogWarning(ex, "Could not draw the chart of {Alert}; the mail goes without it", metric.AlertName);
            return null;
        }
    }

    /// <summary>A subject is one header line: no line breaks or control characters from alert data, bounded length.</summary>
    internal static string Header(string value)
    {
        var chars = value.Select(c => char.IsControl(c) ? ' ' : c).ToArray();
        var line = string.Join(" ", new string(chars).Split(' ', StringSplitOptions.RemoveEmptyEntries));
        return TextLimits.Truncate(line, MaxSubjectLength);
    }

    private ScriptObject Model(IncidentView incident, string kind, bool openedUnsent, bool html, Presentation.IncidentPresentation p, bool hasChart)
    {
        string E(string? value) => html ? WebUtility.HtmlEncode(value ?? "") : value ?? "";
        string Url(string? value) => SafeUrl(value) is { } url ? E(url) : "";
        List<ScriptObject> Links(IEnumerable<Presentation.LinkView> links) =>
            links.Where(l => SafeUrl(l.Url) is not null).Select(l => Data(new ScriptObject { ["text"] = E(l.Text), ["url"] = Url(l.Url) })).ToList();
        List<ScriptObject> Labels(IEnumerable<KeyValuePair<string, string>> labels) =>
            labels.Select(l => Data(new ScriptObject { ["key"] = E(l.Key), ["value"] = E(l.Value) })).ToList();

        return new ScriptObject
        {
            ["kind"] = kind,
            ["closed"] = kind == EmailKinds.Closed,
            ["opened_unsent"] = openedUnsent,
            ["title"] = E(p.Title),
            ["headline"] = E(p.Headline),
            ["severity"] = E(p.Severity ?? ""),
            ["summary"] = E(p.Summary),
            ["description"] = E(p.Description),
            ["first_action"] = E(p.FirstAction ?? ""),
            ["value_line"] = E(p.ValueLine ?? ""),
            ["context_note"] = E(p.ContextNote ?? ""),
            ["common_labels"] = Labels(p.CommonLabels),
            ["links"] = Links(p.Links),
            ["runbook_url"] = Url(p.Links.FirstOrDefault(l => l.Text == "Runbook")?.Url),
            ["firing_count"] = p.FiringCount,
            ["resolved_count"] = p.ResolvedCount,
            ["alert_count"] = p.FiringCount + p.ResolvedCount,
            ["hidden_alerts"] = p.HiddenAlerts,
            ["truncated_alerts"] = p.TruncatedAlerts,
            ["opened_at"] = Utc(p.StartedAt),
            ["closed_at"] = Utc(p.EndedAt ?? incident.ClosedAt ?? incident.OpenedAt),
            ["duration"] = E(p.Duration),
            ["elapsed"] = E(p.Elapsed),
            ["receiver"] = E(incident.Receiver),
            ["incident_id"] = E(incident.Id),
            ["alertmanager_url"] = Url(incident.ExternalUrl),
            ["has_chart"] = hasChart,
            ["chart_cid"] = ChartContentId,
            ["logs_service"] = E(p.Logs?.Service ?? ""),
            ["log_lines"] = (p.Logs?.Lines ?? []).Take(5)
                .Select(l => E($"{l.Time.UtcDateTime.ToString("HH:mm:ss", CultureInfo.InvariantCulture)} {l.Line.ReplaceLineEndings(" ")}")).ToList(),
            ["alerts"] = p.Alerts.Select(a => Data(new ScriptObject
            {
                ["name"] = E(a.DisplayName),
                ["firing"] = a.Firing,
                ["status"] = a.Firing ? "FIRING" : "RESOLVED",
                ["labels"] = Labels(a.Labels),
                ["summary"] = E(a.Summary),
                ["description"] = E(a.Description),
                ["value_line"] = E(a.ValueLine ?? ""),
                ["duration"] = E(a.Duration),
                ["starts_at"] = a.StartsAt is { } s ? Utc(s) : "",
                ["ends_at"] = a.EndsAt is { } e ? Utc(e) : "",
                ["links"] = Links(a.Links),
            })).ToList(),
        };

        static ScriptObject Data(ScriptObject values) => Presentation.TemplateRendering.Data(values);
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
    private static string? SafeUrl(string? value) => Hrefs.WebUri(value)?.AbsoluteUri;

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

}

internal static class EmailKinds
{
    public const string Opened = "opened";
    public const string Closed = "closed";
}
