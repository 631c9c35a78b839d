using System.Globalization;
using B25.Alerting.Enrichment;
using B25.Alerting.Hosting;
using B25.Alerting.Runbooks;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Delivery.Presentation;

/// <summary>A link a message shows: what it opens and where.</summary>
internal sealed record LinkView(string Text, string Url);

/// <summary>One alert as every channel shows it.</summary>
/// <param name="DisplayName">The alert name and what tells it apart in this incident: <c>OrderBookStale symbol=BTCUSDT</c>.</param>
/// <param name="Labels">Only the labels that tell this alert apart from the others of the incident.</param>
/// <param name="Duration">"firing for 12m" or "lasted 4m", from Alertmanager's startsAt and endsAt.</param>
/// <param name="Value">The current value of the rule's series with its threshold, e.g. "12.5 (fires > 5)".</param>
/// <param name="ValueLine">The value with its sparkline, range and threshold, for a line of its own.</param>
internal sealed record AlertPresentation(
    string Fingerprint,
    string Name,
    string DisplayName,
    IReadOnlyList<KeyValuePair<string, string>> Labels,
    bool Firing,
    DateTimeOffset? StartsAt,
    DateTimeOffset? EndsAt,
    string Duration,
    string Summary,
    string Description,
    string? Value,
    string? ValueLine,
    IReadOnlyList<LinkView> Links);

/// <summary>
/// An incident as Slack, email and PagerDuty show it: one model, so the first line, the labels, the
/// durations and the links are the same in every channel.
/// </summary>
/// <param name="Title">The alert name and the group's label values: <c>OrderBookStale market-data</c>.</param>
/// <param name="Headline">The first line (Slack's notification text, the mail subject, the PagerDuty summary) after the
/// state: the title, what distinguishes the firing alerts, and the current value.</param>
/// <param name="CommonLabels">Labels every alert of the incident shares, shown once (hidden ones left out).</param>
/// <param name="Duration">"firing for 12m" or "resolved after 10m 3s": from the alerts' startsAt to their endsAt.</param>
/// <param name="HiddenAlerts">Alerts of the incident not listed in <see cref="Alerts"/>.</param>
/// <param name="TruncatedAlerts">Alerts Alertmanager left out of its latest notification.</param>
/// <param name="ContextNote">Why the live context is missing or partial (a source down or slow), or null.</param>
internal sealed record IncidentPresentation(
    bool Resolved,
    string AlertName,
    string Title,
    string Headline,
    string? Severity,
    string Summary,
    string Description,
    string? FirstAction,
    IReadOnlyList<KeyValuePair<string, string>> CommonLabels,
    int FiringCount,
    int ResolvedCount,
    int HiddenAlerts,
    long TruncatedAlerts,
    DateTimeOffset StartedAt,
    DateTimeOffset? EndedAt,
    string Duration,
    string Elapsed,
    IReadOnlyList<AlertPresentation> Alerts,
    IReadOnlyList<LinkView> Links,
    string? CurrentValue,
    string? ValueLine,
    ServiceLogs? Logs,
    string? ChartUrl,
    string? ContextNote,
    AlertMetricContext? ChartMetric);

/// <summary>Builds the <see cref="IncidentPresentation"/> of an incident (with its enrichment, when it has one).</summary>
internal sealed class IncidentPresenter(IOptions<PresentationOptions> options, RunbookLibrary runbooks, PublicLinks links, TimeProvider time)
{
    private readonly AlertNaming _naming = new(options.Value.Hidden);

    public AlertNaming Naming => _naming;

    public IncidentPresentation Present(IncidentView incident, int maxAlerts = int.MaxValue)
    {
        incident = ControlCharacters.Escape(incident); // alert data reaches every channel through here
        var resolved = incident.State == "closed";
        var enrichment = incident.Enrichment;
        var groupLabels = incident.GroupLabels.Count > 0 ? incident.GroupLabels : incident.CommonLabels;
        var alertName = groupLabels.GetValueOrDefault("alertname") ?? incident.CommonLabels.GetValueOrDefault("alertname")
                        ?? incident.Alerts.FirstOrDefault()?.Labels.GetValueOrDefault("alertname") ?? "alert";
        var title = Title(incident, groupLabels, alertName);

        var keys = _naming.DistinguishingKeys(incident.Alerts.Select(a => a.Labels).ToList(), groupLabels);
        var alerts = incident.Alerts.Take(maxAlerts).Select(a => Alert(a, keys, enrichment, incident.CommonAnnotations)).ToList();

        var starts = incident.Alerts.Select(a => Time(a.StartsAt)).OfType<DateTimeOffset>().ToList();
        var startedAt = starts.Count > 0 ? starts.Min() : incident.OpenedAt;
        DateTimeOffset? endedAt = null;
        if (resolved)
        {
            var ends = incident.Alerts.Select(a => Time(a.EndsAt)).OfType<DateTimeOffset>().ToList();
            endedAt = ends.Count > 0 ? ends.Max() : incident.ClosedAt ?? incident.OpenedAt;
            if (endedAt < startedAt) endedAt = startedAt;
        }
        var elapsed = Span((resolved ? endedAt!.Value : time.GetUtcNow()) - startedAt);
        var duration = resolved ? $"resolved after {elapsed}" : $"firing for {elapsed}";

        // The value the headline shows: the firing alert furthest past its threshold (else the first with a value).
        var worst = Worst(incident.Alerts.Where(a => a.Status == "firing" || resolved), enrichment);
        var currentValue = worst is null ? null : ValueText(worst);
        var firingAlerts = incident.Alerts.Where(a => a.Status == "firing").ToList();
        var headline = Headline(title, resolved, incident, firingAlerts, keys, worst, currentValue);

        var firstAction = runbooks.FirstAction(alertName);
        var common = incident.CommonLabels.Where(l => !_naming.IsHidden(l.Key) && !groupLabels.ContainsKey(l.Key))
            .OrderBy(l => l.Key, StringComparer.Ordinal).ToList();

        var logs = enrichment?.Logs.Values.FirstOrDefault(l => l.Lines.Count > 0);
        var chart = worst?.Points is { Count: > 1 } ? links.Absolute($"/incidents/{Uri.EscapeDataString(incident.Id)}/chart.png") : null;
        return new IncidentPresentation(
            resolved, alertName, title, headline,
            incident.CommonLabels.GetValueOrDefault("severity") is { Length: > 0 } severity ? severity : null,
            incident.CommonAnnotations.GetValueOrDefault("summary") ?? "",
            incident.CommonAnnotations.GetValueOrDefault("description") ?? "",
            firstAction,
            common,
            incident.FiringCount, incident.ResolvedCount,
            Math.Max(0, incident.FiringCount + incident.ResolvedCount - alerts.Count),
            incident.TruncatedAlerts,
            startedAt, endedAt, duration, elapsed,
            alerts,
            IncidentLinks(incident, groupLabels, alertName, enrichment),
            currentValue,
            worst is null ? null : ValueLine(worst),
            logs,
            chart is not null && Uri.TryCreate(chart, UriKind.Absolute, out _) ? chart : null,
            ContextNote(enrichment),
            worst?.Points is { Count: > 1 } ? worst : null);
    }

    /// <summary>The words of a title: the alert name, then the values of the other group labels in key order.</summary>
    private string Title(IncidentView incident, IReadOnlyDictionary<string, string> groupLabels, string alertName)
    {
        var values = groupLabels.Where(l => !_naming.IsHidden(l.Key))
            .OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Value).Where(v => v.Length > 0).ToList();
        // Grouped by alertname only (the usual case): the service the alerts share tells them apart.
        if (values.Count == 0 && incident.CommonLabels.TryGetValue("service", out var service) && service.Length > 0) values.Add(service);
        return values.Count == 0 ? alertName : $"{alertName} {string.Join(" ", values)}";
    }

    private static string Headline(string title, bool resolved, IncidentView incident, List<AlertView> firing, IReadOnlyList<string> keys,
        AlertMetricContext? worst, string? currentValue)
    {
        var shown = resolved ? incident.Alerts.ToList() : firing;
        var text = title;
        if (shown.Count == 1)
        {
            var picked = AlertNaming.Pick(shown[0].Labels, keys);
            if (picked.Count > 0) text += " " + string.Join(" ", picked.Select(l => $"{l.Key}={l.Value}"));
        }
        else if (shown.Count > 1 && keys.Count > 0)
        {
            // The count is the channel's to say (it knows alerts not loaded here); the first line says which.
            var key = keys[0];
            var values = shown.Select(a => a.Labels.GetValueOrDefault(key)).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
            var total = resolved ? incident.FiringCount + incident.ResolvedCount : incident.FiringCount;
            var more = Math.Max(values.Count, total) - Math.Min(values.Count, 3);
            text += $" ({key} {string.Join(", ", values.Take(3))}{(more > 0 ? $" +{more}" : "")})";
        }
        if (currentValue is not null && !resolved)
        {
            var where = shown.Count > 1 && worst is not null && keys.Count > 0 && worst.DistinguishingLabels.TryGetValue(keys[0], out var v)
                ? $"{v} " : "";
            text += $" · {where}now {currentValue}";
        }
        return text;
    }

    private AlertPresentation Alert(AlertView alert, IReadOnlyList<string> keys, IncidentEnrichment? enrichment,
        IReadOnlyDictionary<string, string> commonAnnotations)
    {
        var firing = alert.Status == "firing";
        var startsAt = Time(alert.StartsAt);
        var endsAt = firing ? null : Time(alert.EndsAt);
        var duration = startsAt is null ? ""
            : firing ? $"firing for {Span(time.GetUtcNow() - startsAt.Value)}"
            : endsAt is null ? "resolved"
            : $"lasted {Span(endsAt.Value - startsAt.Value)}";
        var metric = enrichment?.MetricFor(alert.Fingerprint) is { State: ContextState.Ok } m ? m : null;

        var alertLinks = new List<LinkView>();
        // The runbook of the incident is linked once, on the incident; an alert links its own only when it differs.
        var runbook = RunbookUrl(alert.Labels.GetValueOrDefault("alertname"), alert.Annotations.GetValueOrDefault("runbook_url"));
        var common = RunbookUrl(null, commonAnnotations.GetValueOrDefault("runbook_url"));
        if (runbook is not null && runbook != common) AddLink(alertLinks, "Runbook", runbook);
        AddLink(alertLinks, "Graph", alert.GeneratorUrl);

        // An annotation the whole incident shares is shown once, on the incident.
        var summary = alert.Annotations.GetValueOrDefault("summary") ?? "";
        if (summary == commonAnnotations.GetValueOrDefault("summary")) summary = "";
        var description = alert.Annotations.GetValueOrDefault("description") ?? "";
        if (description == commonAnnotations.GetValueOrDefault("description")) description = "";

        return new AlertPresentation(
            alert.Fingerprint,
            alert.Labels.GetValueOrDefault("alertname") ?? "alert",
            AlertNaming.Name(alert.Labels, keys),
            AlertNaming.Pick(alert.Labels, keys),
            firing, startsAt, endsAt, duration, summary, description,
            metric is null ? null : ValueText(metric),
            metric is null ? null : ValueLine(metric),
            alertLinks);
    }

    private List<LinkView> IncidentLinks(IncidentView incident, IReadOnlyDictionary<string, string> groupLabels, string alertName,
        IncidentEnrichment? enrichment)
    {
        var list = new List<LinkView>();
        AddLink(list, "Runbook", RunbookUrl(alertName, incident.CommonAnnotations.GetValueOrDefault("runbook_url")));
        if (enrichment?.GrafanaFor(incident.CommonLabels) is { } grafana) AddLink(list, "Grafana", grafana.Url);
        var graph = incident.Alerts.FirstOrDefault(a => a.Status == "firing" && a.GeneratorUrl.Length > 0)?.GeneratorUrl
                    ?? incident.Alerts.FirstOrDefault(a => a.GeneratorUrl.Length > 0)?.GeneratorUrl;
        AddLink(list, "Prometheus", graph);
        if (WebUrl(incident.ExternalUrl) is { } alertmanager)
        {
            var filter = Uri.EscapeDataString(Matchers(groupLabels));
            AddLink(list, "Alertmanager", groupLabels.Count > 0 ? $"{alertmanager}/#/alerts?filter={filter}" : alertmanager);
            if (groupLabels.Count > 0) AddLink(list, "Silence", $"{alertmanager}/#/silences/new?filter={filter}");
        }
        return list;
    }

    /// <summary>The group's labels as Alertmanager's matcher list: <c>{alertname="X",service="y"}</c>.</summary>
    internal static string Matchers(IReadOnlyDictionary<string, string> labels) =>
        "{" + string.Join(",", labels.OrderBy(l => l.Key, StringComparer.Ordinal)
            .Select(l => $"{l.Key}=\"{l.Value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n")}\"")) + "}";

    /// <summary>
    /// The runbook the service ships for the alert, else the rule's runbook_url made absolute. Without
    /// Service:PublicUrl the shipped page has no address a reader can open: the annotation is used.
    /// </summary>
    private string? RunbookUrl(string? alertName, string? annotation) =>
        (alertName is null ? null : WebUrl(runbooks.Url(alertName))) ?? links.Absolute(annotation);

    private static void AddLink(List<LinkView> list, string text, string? url)
    {
        if (WebUrl(url) is { } safe && list.All(l => l.Url != safe)) list.Add(new LinkView(text, safe));
    }

    /// <summary>Only absolute http(s) links: a javascript: or data: URL from an annotation stays out of every message.</summary>
    private static string? WebUrl(string? value) => Hrefs.WebUri(value) is null ? null : value!.Trim().TrimEnd('/');

    private static AlertMetricContext? Worst(IEnumerable<AlertView> alerts, IncidentEnrichment? enrichment)
    {
        if (enrichment is null) return null;
        var metrics = alerts.Select(a => enrichment.MetricFor(a.Fingerprint))
            .Where(m => m is { State: ContextState.Ok, Current: not null }).Cast<AlertMetricContext>().ToList();
        if (metrics.Count == 0) return null;
        var comparison = metrics[0].Threshold?.Comparison;
        return comparison switch
        {
            ">" or ">=" => metrics.MaxBy(m => Finite(m.Current!.Value) ?? double.MinValue),
            "<" or "<=" => metrics.MinBy(m => Finite(m.Current!.Value) ?? double.MaxValue),
            _ => metrics[0],
        };
    }

    private static double? Finite(double value) => double.IsFinite(value) ? value : null;

    /// <summary>"12.5 (fires > 5)".</summary>
    internal static string ValueText(AlertMetricContext metric)
    {
        var value = Number(metric.Current);
        return metric.Threshold is { } threshold ? $"{value} (fires {threshold})" : value;
    }

    /// <summary>"▁▂▃▅▇ 12.5 · min 3.1 · max 14.2 · fires > 5 · last 1h".</summary>
    internal static string ValueLine(AlertMetricContext metric)
    {
        var parts = new List<string>();
        if (!string.IsNullOrEmpty(metric.Sparkline)) parts.Add(metric.Sparkline);
        parts.Add($"now {Number(metric.Current)}");
        if (metric.Min is not null && metric.Max is not null) parts.Add($"min {Number(metric.Min)} · max {Number(metric.Max)}");
        if (metric.Threshold is { } threshold) parts.Add($"fires {threshold}");
        if (metric.WindowStart is { } from && metric.WindowEnd is { } to) parts.Add($"last {Span(to - from)}");
        return string.Join(" · ", parts);
    }

    internal static string Number(double? value) => value switch
    {
        null => "no data",
        double.NaN => "NaN",
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        { } v when Math.Abs(v) >= 1e6 || (Math.Abs(v) < 1e-3 && v != 0) => v.ToString("0.###e+0", CultureInfo.InvariantCulture),
        { } v => v.ToString("0.###", CultureInfo.InvariantCulture),
    };

    private static string? ContextNote(IncidentEnrichment? enrichment)
    {
        if (enrichment is null) return null;
        var notes = new List<string>();
        void Note(string name, SourceStatus status)
        {
            if (status.State is SourceState.Timeout) notes.Add($"{name} did not answer in time");
            else if (status.State is SourceState.Error) notes.Add($"{name} failed");
        }
        Note("Prometheus", enrichment.Sources.Prometheus);
        Note("Loki", enrichment.Sources.Loki);
        return notes.Count == 0 ? null : "Live context missing: " + string.Join("; ", notes) + ".";
    }

    internal static DateTimeOffset? Time(string? value) =>
        DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) && t.Year > 1 ? t : null;

    internal static string Span(TimeSpan span)
    {
        if (span < TimeSpan.Zero) span = TimeSpan.Zero;
        return span.TotalDays >= 1 ? (span.Hours == 0 ? $"{(int)span.TotalDays}d" : $"{(int)span.TotalDays}d {span.Hours}h")
            : span.TotalHours >= 1 ? (span.Minutes == 0 ? $"{(int)span.TotalHours}h" : $"{(int)span.TotalHours}h {span.Minutes}m")
            : span.TotalMinutes >= 1 ? (span.Seconds == 0 ? $"{span.Minutes}m" : $"{span.Minutes}m {span.Seconds}s")
            : $"{(int)span.TotalSeconds}s";
    }
}
