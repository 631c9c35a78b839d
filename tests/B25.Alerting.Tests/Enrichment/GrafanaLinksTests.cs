using System.Text.Json;
using System.Text.RegularExpressions;
using B25.Alerting.Enrichment;
using B25.Alerting.Enrichment.Grafana;

namespace B25.Alerting.Tests.Enrichment;

/// <summary>The deep links, checked against the dashboards of grafana/ and the targets of prometheus/prometheus.yml.</summary>
public sealed class GrafanaLinksTests
{
    private static readonly DateTimeOffset StartsAt = new(2026, 12, 1, 10, 0, 0, TimeSpan.Zero);

    private static readonly GrafanaOptions Options = new() { Url = "https://grafana.example.com/" };

    private sealed record Dashboard(string Uid, string File, string? ServiceQuery);

    private static readonly Lazy<Dictionary<string, Dashboard>> Dashboards = new(() =>
    {
        var dashboards = new Dictionary<string, Dashboard>(StringComparer.Ordinal);
        foreach (var file in Directory.GetFiles(Repo.PathOf("grafana", "dashboards"), "*.json", SearchOption.AllDirectories))
        {
            using var json = JsonDocument.Parse(File.ReadAllText(file));
            var uid = json.RootElement.GetProperty("uid").GetString()!;
            string? query = null;
            if (json.RootElement.TryGetProperty("templating", out var templating))
                foreach (var variable in templating.GetProperty("list").EnumerateArray())
                    if (variable.GetProperty("name").GetString() == "service")
                    {
                        var q = variable.GetProperty("query");
                        query = q.ValueKind == JsonValueKind.Object ? q.GetProperty("query").GetString() : q.GetString();
                    }
            dashboards[uid] = new Dashboard(uid, file, query);
        }
        return dashboards;
    });

    /// <summary>service label value per scrape job of prometheus.yml (labels: {service: x, ...}).</summary>
    private static readonly Lazy<Dictionary<string, HashSet<string>>> ServicesByJob = new(() =>
    {
        var byJob = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        string? job = null;
        foreach (var line in File.ReadLines(Repo.PathOf("prometheus", "prometheus.yml")))
        {
            var jobMatch = Regex.Match(line, @"job_name:\s*([\w-]+)");
            if (jobMatch.Success) job = jobMatch.Groups[1].Value;
            var service = Regex.Match(line, @"labels:\s*\{\s*service:\s*([\w-]+)");
            if (service.Success && job is not null)
                (byJob.TryGetValue(job, out var set) ? set : byJob[job] = []).Add(service.Groups[1].Value);
        }
        return byJob;
    });

    [Fact]
    public void Every_dashboard_uid_linked_exists_in_grafana_and_has_a_service_variable()
    {
        var uids = GrafanaLinks.BuiltIn.Values.Select(d => d.Uid).Append(GrafanaLinks.DefaultDashboardUid).Distinct();
        foreach (var uid in uids)
        {
            Assert.True(Dashboards.Value.ContainsKey(uid), $"dashboard uid {uid} is not in grafana/dashboards (have: {string.Join(", ", Dashboards.Value.Keys)})");
            Assert.True(Dashboards.Value[uid].ServiceQuery is not null, $"{Dashboards.Value[uid].File} has no service variable");
        }
    }

    [Fact]
    public void The_service_variable_of_each_link_is_one_its_dashboard_offers()
    {
        foreach (var (service, dashboard) in GrafanaLinks.BuiltIn)
        {
            var query = Dashboards.Value[dashboard.Uid].ServiceQuery!;
            var value = dashboard.ServiceVariable!;
            // label_values(up{service="x"}, service), label_values(up{service=~"a|b"}, service), label_values(up{job="j"}, service)
            var serviceMatcher = Regex.Match(query, @"service(=~|=)""([^""]*)""");
            if (serviceMatcher.Success)
                Assert.True(Regex.IsMatch(value, serviceMatcher.Groups[1].Value == "=" ? $"^{Regex.Escape(serviceMatcher.Groups[2].Value)}$" : $"^(?:{serviceMatcher.Groups[2].Value})$"),
                    $"{service}: var-service={value} is not offered by {dashboard.Uid} ({query})");
            var jobMatcher = Regex.Match(query, @"job=""([^""]*)""");
            if (jobMatcher.Success)
                Assert.True(ServicesByJob.Value.TryGetValue(jobMatcher.Groups[1].Value, out var services) && services.Contains(value),
                    $"{service}: var-service={value} is not a service of job {jobMatcher.Groups[1].Value} ({dashboard.Uid}: {query})");
        }
    }

    [Fact]
    public void Every_service_prometheus_scrapes_has_its_own_dashboard()
    {
        var services = ServicesByJob.Value.Values.SelectMany(s => s).Distinct().ToList();
        Assert.Contains("market-data", services);
        foreach (var service in services)
            Assert.True(GrafanaLinks.BuiltIn.ContainsKey(service), $"service {service} of prometheus.yml has no dashboard in GrafanaLinks.BuiltIn");
        // Each trading service has a dashboard named after it.
        foreach (var service in new[] { "market-data", "order-execution", "strategy-engine", "account-monitor", "risk-manager", "config-service" })
            Assert.Equal($"b25-{service}", GrafanaLinks.BuiltIn[service].Uid);
    }

    [Fact]
    public void A_firing_alert_links_its_service_dashboard_from_30_minutes_before_it_started_to_now()
    {
        var alert = TestAlerts.Firing("fp", "x > 1", StartsAt, ("alertname", "OrderBookStale"), ("service", "market-data"), ("symbol", "BTCUSDT"));

        var links = GrafanaLinks.For([alert], Options);

        var link = Assert.Single(links).Value;
        Assert.Equal("market-data", link.Service);
        Assert.Equal("b25-market-data", link.DashboardUid);
        var from = StartsAt.AddMinutes(-30).ToUnixTimeMilliseconds();
        Assert.Equal($"https://grafana.example.com/d/b25-market-data?orgId=1&from={from}&to=now&var-service=market-data", link.Url);
    }

    [Fact]
    public void Resolved_alerts_link_to_15_minutes_after_the_last_end()
    {
        var first = TestAlerts.Firing("a", "x > 1", StartsAt, ("service", "order-execution")) with { Status = "resolved", EndsAt = StartsAt.AddMinutes(5) };
        var second = TestAlerts.Firing("b", "x > 1", StartsAt.AddMinutes(2), ("service", "order-execution")) with { Status = "resolved", EndsAt = StartsAt.AddMinutes(9) };

        var link = GrafanaLinks.For([first, second], Options)["order-execution"];

        Assert.Contains($"from={StartsAt.AddMinutes(-30).ToUnixTimeMilliseconds()}&to={StartsAt.AddMinutes(9 + 15).ToUnixTimeMilliseconds()}", link.Url);

        // One of them still firing: the range runs to now.
        Assert.Contains("&to=now", GrafanaLinks.For([first, second with { Status = "firing", EndsAt = null }], Options)["order-execution"].Url);
    }

    [Fact]
    public void One_link_per_service_and_the_default_dashboard_for_alerts_without_one()
    {
        var alerts = new[]
        {
            TestAlerts.Firing("a", "x", StartsAt, ("service", "market-data")),
            TestAlerts.Firing("b", "x", StartsAt, ("service", "market-data")),
            TestAlerts.Firing("c", "x", StartsAt, ("service", "dashboard-server")),
            TestAlerts.Firing("d", "x", StartsAt, ("alertname", "HighDrawdown")),
            TestAlerts.Firing("e", "x", StartsAt, ("job", "risk-manager")),
        };

        var links = GrafanaLinks.For(alerts, Options);

        Assert.Equal(["", "dashboard-server", "market-data", "risk-manager"], links.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("b25-config-service", links["dashboard-server"].DashboardUid);
        Assert.EndsWith("&var-service=dashboard-server", links["dashboard-server"].Url);
        Assert.Equal(GrafanaLinks.DefaultDashboardUid, links[IncidentEnrichment.NoService].DashboardUid);
        Assert.DoesNotContain("var-service", links[IncidentEnrichment.NoService].Url);
        Assert.Null(links[IncidentEnrichment.NoService].Service);
        Assert.Equal("b25-risk-manager", links["risk-manager"].DashboardUid);
    }

    [Fact]
    public void Configured_dashboards_override_the_built_in_ones_and_unknown_services_get_the_default()
    {
        var options = new GrafanaOptions { Url = "http://grafana:3000", Dashboards = { ["market-data"] = "custom-md" }, DefaultDashboard = "b25-alerts" };

        Assert.Equal(new GrafanaDashboard("custom-md", "market-data"), GrafanaLinks.DashboardFor("market-data", options));
        Assert.Equal(new GrafanaDashboard("b25-alerts", null), GrafanaLinks.DashboardFor("something-new", options));
        Assert.Equal(new GrafanaDashboard("b25-alerts", null), GrafanaLinks.DashboardFor(null, options));
    }

    [Fact]
    public void No_grafana_url_no_links() =>
        Assert.Empty(GrafanaLinks.For([TestAlerts.Firing("a", "x", StartsAt, ("service", "market-data"))], new GrafanaOptions()));

    [Fact]
    public void Label_values_are_escaped_in_the_link()
    {
        var options = new GrafanaOptions { Url = Options.Url, Dashboards = { ["a&b c"] = "custom/uid" } };
        var link = GrafanaLinks.For([TestAlerts.Firing("a", "x", StartsAt, ("service", "a&b c"))], options)["a&b c"];
        Assert.Contains("/d/custom%2Fuid?", link.Url);
        Assert.EndsWith("&var-service=a%26b%20c", link.Url);
    }
}
