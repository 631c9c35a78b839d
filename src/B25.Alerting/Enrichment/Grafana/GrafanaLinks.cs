using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace B25.Alerting.Enrichment.Grafana;

/// <summary>The Grafana section: where dashboard links point.</summary>
internal sealed class GrafanaOptions : IValidatableObject
{
    public const string Section = "Grafana";

    /// <summary>Base URL of Grafana as people reach it (e.g. <c>https://grafana.example.com</c>); empty: no dashboard links.</summary>
    public string? Url { get; set; }

    /// <summary>Dashboard uid per service label value, added to (and overriding) the built-in map of <c>grafana/</c>.</summary>
    public Dictionary<string, string> Dashboards { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The dashboard of alerts whose service has none (or that carry no service label).</summary>
    [Required]
    public string DefaultDashboard { get; set; } = GrafanaLinks.DefaultDashboardUid;

    public bool Enabled => !string.IsNullOrWhiteSpace(Url);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!SourceUrl.IsValid(Url))
            yield return new ValidationResult("Grafana:Url must be an absolute http(s) URL or empty.", [nameof(Url)]);
        foreach (var (service, uid) in Dashboards)
            if (string.IsNullOrWhiteSpace(uid))
                yield return new ValidationResult($"Grafana:Dashboards:{service} is empty: give a dashboard uid or remove it.", [nameof(Dashboards)]);
    }
}

/// <summary>A service's dashboard, and the value its <c>service</c> variable takes (null: leave it at All).</summary>
internal sealed record GrafanaDashboard(string Uid, string? ServiceVariable);

/// <summary>
/// Deep links into the dashboards of <c>grafana/dashboards/</c>: the service's own dashboard, with
/// <c>var-service</c> set and the time range around the alerts (from 30 minutes before the first startsAt to
/// 15 minutes after the last endsAt; to <c>now</c> while an alert still fires, so the link stays live).
/// </summary>
internal static class GrafanaLinks
{
    public const string DefaultDashboardUid = "b25-system-health-overview";

    public static readonly TimeSpan Before = TimeSpan.FromMinutes(30);
    public static readonly TimeSpan After = TimeSpan.FromMinutes(15);

    /// <summary>
    /// Every service label value of prometheus/prometheus.yml, mapped to the dashboard that shows it. A dashboard
    /// whose <c>service</c> variable only offers its own services is given one of them (Alertmanager's panels
    /// live on B25.Alerting's dashboard, whose variable knows only <c>b25-alerting</c>).
    /// </summary>
    public static readonly IReadOnlyDictionary<string, GrafanaDashboard> BuiltIn = new Dictionary<string, GrafanaDashboard>(StringComparer.Ordinal)
    {
        ["market-data"] = new("b25-market-data", "market-data"),
        ["order-execution"] = new("b25-order-execution", "order-execution"),
        ["strategy-engine"] = new("b25-strategy-engine", "strategy-engine"),
        ["account-monitor"] = new("b25-account-monitor", "account-monitor"),
        ["risk-manager"] = new("b25-risk-manager", "risk-manager"),
        ["config-service"] = new("b25-config-service", "config-service"),
        ["dashboard-server"] = new("b25-config-service", "dashboard-server"),
        ["b25-alerting"] = new("b25-alerting", "b25-alerting"),
        ["alertmanager"] = new("b25-alerting", "b25-alerting"),
        ["prometheus"] = new("b25-infrastructure", "prometheus"),
        ["node-exporter"] = new("b25-infrastructure", "node-exporter"),
        ["cadvisor"] = new("b25-infrastructure", "cadvisor"),
        ["promtail"] = new("b25-infrastructure", "promtail"),
        ["loki"] = new("b25-infrastructure", "loki"),
        ["blackbox-exporter"] = new("b25-service-discovery", "blackbox-exporter"),
        ["postgres"] = new("b25-service-discovery", "postgres"),
        ["exchange-network"] = new("b25-service-discovery", "exchange-network"),
    };

    /// <summary>The dashboard of a service: the configured map first, then the built-in one, else the default (All services).</summary>
    public static GrafanaDashboard DashboardFor(string? service, GrafanaOptions options)
    {
        if (service is not null)
        {
            if (options.Dashboards.TryGetValue(service, out var uid) && !string.IsNullOrWhiteSpace(uid)) return new GrafanaDashboard(uid.Trim(), service);
            if (BuiltIn.TryGetValue(service, out var dashboard)) return dashboard;
        }
        return new GrafanaDashboard(options.DefaultDashboard, null);
    }

    /// <summary>
    /// One link per service label value of the alerts (key <see cref="IncidentEnrichment.NoService"/> for alerts
    /// without one). An alert without <c>service</c> but with a <c>job</c> that names a known service uses that.
    /// </summary>
    public static Dictionary<string, GrafanaLink> For(IReadOnlyList<EnrichmentAlert> alerts, GrafanaOptions options)
    {
        var links = new Dictionary<string, GrafanaLink>(StringComparer.Ordinal);
        if (!options.Enabled) return links;
        foreach (var group in alerts.GroupBy(a => KeyFor(a.Labels), StringComparer.Ordinal))
        {
            var service = group.Key.Length == 0 ? null : group.Key;
            var dashboard = DashboardFor(service, options);
            var from = group.Min(a => a.StartsAt) - Before;
            // Resolved alerts have an end; while any still fires, the range runs to now.
            var ended = group.All(a => !a.IsFiring && a.EndsAt is not null);
            var to = ended ? Ms(group.Max(a => a.EndsAt!.Value) + After) : "now";
            links[group.Key] = new GrafanaLink(service, dashboard.Uid, Url(options.Url!, dashboard, Ms(from), to));
        }
        return links;
    }

    public static string Url(string grafanaUrl, GrafanaDashboard dashboard, string from, string to)
    {
        var url = $"{grafanaUrl.Trim().TrimEnd('/')}/d/{Uri.EscapeDataString(dashboard.Uid)}?orgId=1&from={from}&to={to}";
        return dashboard.ServiceVariable is null ? url : $"{url}&var-service={Uri.EscapeDataString(dashboard.ServiceVariable)}";
    }

    /// <summary>The service an alert's link is filed under: its <c>service</c> label, else a <c>job</c> that names a known service, else none.</summary>
    public static string KeyFor(IReadOnlyDictionary<string, string> labels)
    {
        if (labels.TryGetValue("service", out var service) && !string.IsNullOrWhiteSpace(service)) return service;
        if (labels.TryGetValue("job", out var job) && BuiltIn.ContainsKey(job)) return job;
        return IncidentEnrichment.NoService;
    }

    private static string Ms(DateTimeOffset time) => time.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);
}
