using System.Text.Json;
using System.Text.Json.Nodes;

namespace B25.Stack.Tests;

public sealed class DashboardTests
{
    // Current core panel types (Grafana 10-12), plus rows. Never the deprecated "graph",
    // "singlestat" or "table-old", and no plugin panels (the plan's GF_INSTALL_PLUGINS is gone).
    private static readonly HashSet<string> CurrentPanelTypes =
    [
        "timeseries", "stat", "gauge", "table", "heatmap", "piechart", "logs", "bargauge", "text", "row",
    ];

    // Plan 2.4: the folders and dashboard numbers; plus 41, the B25.Alerting service itself.
    private static readonly Dictionary<string, string[]> ExpectedLayout = new()
    {
        ["System Health"] = ["01", "02", "03"],
        ["Performance"] = ["10", "11", "12"],
        ["Business Metrics"] = ["20", "21", "22", "23"],
        ["Service Dashboards"] = ["30", "31", "32", "33", "34", "35"],
        ["Alerts"] = ["40", "41"],
    };

    // Plan 5.x: refresh rate and default time range per dashboard (prefix of the file name).
    private static readonly Dictionary<string, (string Refresh, string From)> ExpectedRefresh = new()
    {
        ["01"] = ("15s", "now-1h"),
        ["10"] = ("10s", "now-15m"),
        ["20"] = ("30s", "now-24h"),
        ["30"] = ("5s", "now-1h"),
    };

    private static readonly IReadOnlyList<Dashboard> All = Dashboard.LoadAll();

    [Fact]
    public void Every_dashboard_file_is_well_formed_json()
    {
        var files = Dashboard.Files();
        Assert.NotEmpty(files);
        var failures = new List<string>();
        foreach (var file in files)
        {
            try
            {
                using var _ = JsonDocument.Parse(File.ReadAllText(file));
            }
            catch (JsonException e)
            {
                failures.Add($"{Repo.Relative(file)}: {e.Message}");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void The_plan_folder_structure_has_one_dashboard_per_number()
    {
        var failures = new List<string>();
        foreach (var (folder, numbers) in ExpectedLayout)
        {
            foreach (var number in numbers)
            {
                var matches = All.Where(d => d.Folder == folder && System.IO.Path.GetFileName(d.Path).StartsWith(number + "-", StringComparison.Ordinal)).ToList();
                if (matches.Count != 1) failures.Add($"{folder}/{number}-*.json: found {matches.Count}");
            }
        }
        foreach (var d in All.Where(d => !ExpectedLayout.ContainsKey(d.Folder)))
        {
            failures.Add($"{d.Name}: folder \"{d.Folder}\" is not one of the plan's folders");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Dashboard_uids_and_titles_are_unique_and_files_are_provisioning_ready()
    {
        var failures = new List<string>();
        foreach (var d in All)
        {
            if (string.IsNullOrWhiteSpace(d.Uid) || d.Uid.Length > 40) failures.Add($"{d.Name}: uid missing or longer than 40 characters");
            if (string.IsNullOrWhiteSpace(d.Title)) failures.Add($"{d.Name}: title missing");
            // File provisioning takes the dashboard model itself, not the API's {"dashboard": ...} envelope.
            if (d.Json.ContainsKey("dashboard")) failures.Add($"{d.Name}: wrapped in a \"dashboard\" envelope");
            if (d.Json["id"] is not null) failures.Add($"{d.Name}: has a fixed numeric id (must be null/absent)");
            var panelIds = d.Panels().Select(p => p["id"]?.GetValue<int>()).ToList();
            if (panelIds.Any(id => id is null)) failures.Add($"{d.Name}: a panel has no id");
            foreach (var dup in panelIds.Where(id => id is not null).GroupBy(id => id).Where(g => g.Count() > 1))
            {
                failures.Add($"{d.Name}: panel id {dup.Key} used {dup.Count()} times");
            }
        }
        foreach (var dup in All.GroupBy(d => d.Uid).Where(g => g.Count() > 1))
        {
            failures.Add($"uid \"{dup.Key}\" used by {string.Join(", ", dup.Select(d => d.Name))}");
        }
        foreach (var dup in All.GroupBy(d => (d.Folder, d.Title)).Where(g => g.Count() > 1))
        {
            failures.Add($"title \"{dup.Key.Title}\" used twice in folder {dup.Key.Folder}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Panels_fit_the_24_column_grid_without_overlapping()
    {
        var failures = new List<string>();
        foreach (var d in All)
        {
            var boxes = new List<(string Title, int X, int Y, int W, int H)>();
            foreach (var p in d.Panels())
            {
                var g = p["gridPos"];
                var title = p["title"]?.GetValue<string>() ?? "?";
                if (g is null) { failures.Add($"{d.Name}: panel \"{title}\" has no gridPos"); continue; }
                var box = (title, g["x"]!.GetValue<int>(), g["y"]!.GetValue<int>(), g["w"]!.GetValue<int>(), g["h"]!.GetValue<int>());
                if (box.Item2 < 0 || box.Item4 < 1 || box.Item2 + box.Item4 > 24) failures.Add($"{d.Name}: panel \"{title}\" leaves the 24-column grid");
                foreach (var other in boxes.Where(o => o.X < box.Item2 + box.Item4 && box.Item2 < o.X + o.W && o.Y < box.Item3 + box.Item5 && box.Item3 < o.Y + o.H))
                {
                    failures.Add($"{d.Name}: panels \"{title}\" and \"{other.Title}\" overlap");
                }
                boxes.Add(box);
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void No_dashboard_uses_a_deprecated_or_unknown_panel_type()
    {
        var failures = All.SelectMany(d => d.Panels()
                .Select(p => (d, type: p["type"]?.GetValue<string>() ?? "(none)", title: p["title"]?.GetValue<string>()))
                .Where(x => !CurrentPanelTypes.Contains(x.type))
                .Select(x => $"{x.d.Name}: panel \"{x.title}\" has type \"{x.type}\""))
            .ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Every_datasource_reference_resolves_to_a_provisioned_datasource_or_a_variable()
    {
        var provisioned = ProvisionedDatasourceUids();
        Assert.Contains("prometheus", provisioned);
        Assert.Contains("loki", provisioned);
        var failures = new List<string>();
        foreach (var d in All)
        {
            var references = new List<(string Where, JsonNode? Ds)>();
            foreach (var panel in d.Panels())
            {
                var title = panel["title"]?.GetValue<string>();
                var type = panel["type"]?.GetValue<string>();
                var targets = (panel["targets"] as JsonArray ?? []).OfType<JsonObject>().ToList();
                if (targets.Count > 0 && panel["datasource"] is null)
                {
                    failures.Add($"{d.Name}: panel \"{title}\" has queries but no datasource (the default datasource may change)");
                }
                if (type is not "row" and not "text" || panel["datasource"] is not null) references.Add(($"panel \"{title}\"", panel["datasource"]));
                references.AddRange(targets.Where(t => t["datasource"] is not null).Select(t => ($"panel \"{title}\" target {t["refId"]}", t["datasource"])));
            }
            references.AddRange(d.Variables().Where(v => v["datasource"] is not null).Select(v => ($"variable {v["name"]}", v["datasource"])));
            references.AddRange((d.Json["annotations"]?["list"] as JsonArray ?? []).OfType<JsonObject>().Select(a => ($"annotation {a["name"]}", a["datasource"])));
            var variables = d.Variables().Select(v => v["name"]?.GetValue<string>()).ToHashSet();
            foreach (var (where, ds) in references)
            {
                if (ds is null) continue;
                var uid = Dashboard.DatasourceUid(ds);
                if (uid is null) { failures.Add($"{d.Name}: {where}: datasource has no uid"); continue; }
                if (provisioned.Contains(uid) || uid is "-- Grafana --" or "grafana" or "-- Mixed --" or "-- Dashboard --") continue;
                if (uid.StartsWith('$') && variables.Contains(uid.Trim('$', '{', '}'))) continue;
                failures.Add($"{d.Name}: {where}: datasource uid \"{uid}\" is not provisioned (known: {string.Join(", ", provisioned)})");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Every_dashboard_has_a_service_selector_fed_by_label_values()
    {
        var failures = new List<string>();
        foreach (var d in All)
        {
            var service = d.Variables().FirstOrDefault(v => v["name"]?.GetValue<string>() == "service");
            if (service is null) { failures.Add($"{d.Name}: no `service` template variable"); continue; }
            var query = service["query"] switch
            {
                JsonValue v => v.GetValue<string>(),
                JsonObject o => o["query"]?.GetValue<string>(),
                _ => null,
            };
            if (service["type"]?.GetValue<string>() != "query" || query is null || !query.TrimStart().StartsWith("label_values(", StringComparison.Ordinal))
            {
                failures.Add($"{d.Name}: `service` must be a query variable on label_values(...), got type {service["type"]} query {query}");
            }
            if (Dashboard.DatasourceUid(service["datasource"]) != "prometheus")
            {
                failures.Add($"{d.Name}: `service` variable must query the prometheus datasource");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Refresh_rates_and_time_ranges_follow_the_plan()
    {
        var failures = new List<string>();
        foreach (var d in All)
        {
            var refresh = d.Json["refresh"]?.GetValue<string>();
            var from = d.Json["time"]?["from"]?.GetValue<string>();
            if (string.IsNullOrEmpty(refresh) || string.IsNullOrEmpty(from)) failures.Add($"{d.Name}: refresh or time.from missing");
            var number = System.IO.Path.GetFileName(d.Path)[..2];
            if (ExpectedRefresh.TryGetValue(number, out var expected) && (refresh, from) != expected)
            {
                failures.Add($"{d.Name}: refresh {refresh} / from {from}, plan says {expected.Refresh} / {expected.From}");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Every_dashboard_query_parses_with_promtool()
    {
        var queries = PrometheusQueries();
        Assert.NotEmpty(queries);
        var errors = Promtool.ParseErrors(queries.Select(q => PromQl.SubstituteGrafanaVariables(q.Expr)).ToList());
        var failures = errors.OrderBy(e => e.Key)
            .Select(e => $"{queries[e.Key]}: {e.Value}\n    {PromQl.Short(queries[e.Key].Expr)}")
            .ToList();
        Assert.True(failures.Count == 0, $"{failures.Count} of {queries.Count} queries do not parse:\n" + string.Join("\n", failures));
    }

    [Fact]
    public void Every_dashboard_query_names_only_metrics_of_the_contract()
    {
        var known = new KnownMetrics();
        var failures = new List<string>();
        foreach (var q in PrometheusQueries())
        {
            foreach (var metric in PromQl.MetricNames(PromQl.SubstituteGrafanaVariables(q.Expr)))
            {
                if (!known.IsKnown(metric)) failures.Add($"{q}: unknown metric {metric}");
            }
        }
        Assert.True(failures.Count == 0,
            $"metrics not in {Repo.Relative(known.ContractPath)} (services, exporters, recorded), the recording rules, or b25_alerting_*:\n"
            + string.Join("\n", failures.Distinct()));
    }

    [Fact]
    public void Grafana_variables_sit_only_where_a_plain_word_may_stand()
    {
        // The checks above replace $service by a word; that is only sound inside label matchers
        // (or as a range/interval built-in). A variable in a metric-name position would hide a typo.
        var failures = PrometheusQueries()
            .Where(q => PromQl.MetricNames(PromQl.SubstituteGrafanaVariables(q.Expr)).Contains("grafana_variable"))
            .Select(q => $"{q}: a Grafana variable stands where a metric name goes")
            .ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Every_service_dashboard_shows_its_logs_from_loki_next_to_its_metrics()
    {
        // Plan 2.5 / phase 5: logs linked to metrics. Service dashboards, the overview and the
        // error-rate dashboard carry a Loki logs panel filtered by the same service selector.
        var expected = All.Where(d => d.Folder == "Service Dashboards" || d.Uid is "b25-system-health-overview" or "b25-error-rates" or "b25-alerting");
        var failures = expected
            .Where(d => !d.Panels().Any(p => p["type"]?.GetValue<string>() == "logs"
                                             && Dashboard.DatasourceUid(p["datasource"]) == "loki"
                                             && (p["targets"] as JsonArray ?? []).OfType<JsonObject>().Any(t => t["expr"]?.GetValue<string>()?.Contains("$service", StringComparison.Ordinal) == true)))
            .Select(d => $"{d.Name}: no Loki logs panel filtered by $service")
            .ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Log_panels_query_loki_by_the_labels_promtail_sets()
    {
        var promtail = Repo.LoadYaml(Repo.PathOf("compose", "promtail", "promtail-config.yml"));
        var labels = new HashSet<string>(StringComparer.Ordinal) { "job" };
        foreach (var client in promtail.Items("clients"))
        {
            foreach (var (k, _) in client.Entries("external_labels")) labels.Add(k);
        }
        foreach (var job in promtail.Items("scrape_configs"))
        {
            foreach (var r in job.Items("relabel_configs"))
            {
                if (r.Str("target_label") is { } t && !t.StartsWith("__", StringComparison.Ordinal)) labels.Add(t);
            }
            foreach (var stage in job.Items("pipeline_stages"))
            {
                foreach (var (k, _) in stage.Entries("labels")) labels.Add(k);
            }
        }
        var lokiQueries = All.SelectMany(d => d.Queries()).Where(q => q.DatasourceUid == "loki").ToList();
        Assert.NotEmpty(lokiQueries);
        var failures = new List<string>();
        foreach (var q in lokiQueries)
        {
            var selector = System.Text.RegularExpressions.Regex.Match(q.Expr, @"\{([^}]*)\}");
            if (!selector.Success) { failures.Add($"{q}: no stream selector"); continue; }
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(selector.Groups[1].Value, @"([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)"))
            {
                if (!labels.Contains(m.Groups[1].Value)) failures.Add($"{q}: label {m.Groups[1].Value} is not set by promtail ({string.Join(", ", labels)})");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static List<Query> PrometheusQueries() =>
        All.SelectMany(d => d.Queries().Concat(d.OtherQueries())).Where(q => q.DatasourceUid is "prometheus" or null).ToList();

    private static HashSet<string> ProvisionedDatasourceUids()
    {
        var uids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(Repo.PathOf("grafana", "provisioning", "datasources"), "*.y*ml"))
        {
            foreach (var ds in Repo.LoadYaml(file).Items("datasources"))
            {
                if (ds.Str("uid") is { } uid) uids.Add(uid);
            }
        }
        return uids;
    }

    [Fact]
    public void Open_incidents_are_read_from_the_service_gauge_not_counted_from_counters()
    {
        // opened_total - closed_total reads 0 after a restart with incidents open, and later goes negative.
        var queries = All.SelectMany(d => d.Queries()).ToList();
        var open = Assert.Single(queries, q => q.Dashboard.Uid == "b25-alerting" && q.PanelTitle == "Open incidents");
        Assert.Equal("max(b25_alerting_open_incidents{service=~\"$service\"})", open.Expr);
        Assert.DoesNotContain(queries, q => System.Text.RegularExpressions.Regex.IsMatch(q.Expr,
            @"b25_alerting_incidents_opened_total[^\[]*\)\s*-\s*sum\(b25_alerting_incidents_closed_total"));
    }
}
