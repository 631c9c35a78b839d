using System.Text.RegularExpressions;

namespace B25.Stack.Tests;

/// <summary>
/// docs/runbooks/ against prometheus/alerts/: one runbook per alert rule and one rule per runbook,
/// a stable relative runbook_url, the fixed structure the service parses (docs/runbooks/README.md),
/// the first action, and links and queries that point at things that exist.
/// </summary>
public sealed partial class RunbookTests
{
    // The labels Promtail sets on log streams (compose/promtail/promtail-config.yml).
    private static readonly HashSet<string> LokiLabels = ["service_name", "level", "container_name", "environment"];

    private static readonly IReadOnlyList<AlertRule> Rules = AlertRule.LoadAll();
    private static readonly IReadOnlyList<Runbook> All = Runbook.LoadAll();

    [Fact]
    public void Every_alert_rule_has_a_runbook_and_every_runbook_an_alert_rule()
    {
        Assert.NotEmpty(Rules);
        var failures = new List<string>();
        var rules = Rules.Select(r => r.Name).ToHashSet(StringComparer.Ordinal);
        var runbooks = All.Select(r => r.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var rule in Rules.Where(r => !runbooks.Contains(r.Name)))
        {
            failures.Add($"{rule}: no runbook docs/runbooks/{rule.Name}.md");
        }
        foreach (var runbook in All.Where(r => !rules.Contains(r.Name)))
        {
            failures.Add($"{runbook.File}: no alert rule named {runbook.Name} in prometheus/alerts/*.yml");
        }
        foreach (var dup in Rules.GroupBy(r => r.Name).Where(g => g.Count() > 1))
        {
            failures.Add($"alert {dup.Key} is defined {dup.Count()} times ({string.Join(", ", dup.Select(r => Repo.Relative(r.File)))}): one runbook cannot serve both");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Every_runbook_url_is_exactly_the_relative_path_of_its_runbook()
    {
        Assert.NotEmpty(Rules);
        var failures = Rules
            .Where(r => r.RunbookUrl != $"/runbooks/{r.Name}")
            .Select(r => $"{r}: runbook_url is {(r.RunbookUrl is null ? "missing" : $"'{r.RunbookUrl}'")}, expected '/runbooks/{r.Name}'")
            .ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void No_external_label_carries_the_alerting_service_address()
    {
        // An external label is part of every alert's identity and shows on every message: the
        // service's address belongs in its Service:PublicUrl setting, not here.
        var file = Repo.PathOf("prometheus", "prometheus.yml");
        var labels = Repo.LoadYaml(file).Get("global").Entries("external_labels").ToList();
        var failures = labels
            .Where(l => l.Key == "alerting_url" || (l.Value.Str() ?? "").Contains("://", StringComparison.Ordinal))
            .Select(l => $"{Repo.Relative(file)}: external label {l.Key}: {l.Value.Str()}")
            .ToList();
        foreach (var rule in Rules.Where(r => File.ReadAllText(r.File).Contains("$externalLabels", StringComparison.Ordinal)))
        {
            failures.Add($"{Repo.Relative(rule.File)} uses $externalLabels");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures.Distinct()));
    }

    [Fact]
    public void Every_runbook_has_its_title_a_one_line_summary_and_the_five_sections_in_order()
    {
        Assert.NotEmpty(All);
        var failures = new List<string>();
        foreach (var r in All)
        {
            if (r.Title != r.Name) failures.Add($"{r.File}: line 1 must be \"# {r.Name}\"");
            if (r.Preamble.Count != 1)
            {
                failures.Add($"{r.File}: expected one summary line between the title and ## {Runbook.SectionOrder[0]}, found {r.Preamble.Count}");
            }
            else if (r.Preamble[0].Text.TrimStart() is var summary && (summary.StartsWith('#') || ListItem().IsMatch(summary)))
            {
                failures.Add($"{r.File}: line {r.Preamble[0].Line}: the summary must be a plain paragraph");
            }
            var headings = r.Sections.Select(s => s.Heading).ToList();
            if (!headings.SequenceEqual(Runbook.SectionOrder))
            {
                failures.Add($"{r.File}: level-2 headings are [{string.Join(" | ", headings)}], expected [{string.Join(" | ", Runbook.SectionOrder)}]");
            }
            foreach (var s in r.Sections.Where(s => s.Lines.All(l => l.Text.Trim().Length == 0) && s.Blocks.Count == 0))
            {
                failures.Add($"{r.File}: ## {s.Heading} is empty");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Every_runbook_has_a_first_action_that_stands_alone()
    {
        Assert.NotEmpty(All);
        var failures = new List<string>();
        foreach (var r in All)
        {
            var (action, problems) = r.FirstAction();
            failures.AddRange(problems.Select(p => $"{r.File}: {p}{(action is null ? "" : $"\n    \"{action}\"")}"));
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Theory]
    [InlineData("1. Restart the stopped replica.\n2. Then look.", null)]
    [InlineData("1. Restart the stopped replica.\n\n2. Then look.\n\n   ```sh\n   x\n   ```", null)]
    [InlineData("Some text first.\n\n1. Restart it.", "does not start with an ordered list")]
    [InlineData("1. Restart the stopped replica\n   and then look.\n2. More.", "continues past its line")]
    [InlineData("1. Restart the `b25-alerting` replica.", "markup")]
    [InlineData("1. Open [41](grafana:/d/b25-alerting) now.", "markup")]
    [InlineData("1. restart the replica.", "capital letter")]
    [InlineData("1. Restart the replica", "period")]
    [InlineData("1. Restart the replica. Then look.", "more than one sentence")]
    [InlineData("1. Restart {{ $labels.instance }} now.", "template braces")]
    public void The_first_action_rule_accepts_and_rejects_what_the_readme_says(string actions, string? problem)
    {
        var runbook = Runbook.FromText("Example", $"# Example\n\nSummary.\n\n## Actions\n\n{actions}\n\n## Escalation\n\nNobody.\n");
        var (_, problems) = runbook.FirstAction();
        if (problem is null) Assert.Empty(problems);
        else Assert.Contains(problems, p => p.Contains(problem, StringComparison.Ordinal));
    }

    [Fact]
    public void A_first_action_longer_than_140_characters_is_rejected()
    {
        var sentence = "Restart the replica " + new string('a', 120) + ".";
        var (_, problems) = Runbook.FromText("Example", $"# Example\n\nSummary.\n\n## Actions\n\n1. {sentence}\n").FirstAction();
        Assert.Contains(problems, p => p.Contains("at most 140", StringComparison.Ordinal));
        var (_, none) = Runbook.FromText("Example", $"# Example\n\nSummary.\n\n## Actions\n\n1. {sentence[..^22]}.\n").FirstAction();
        Assert.Empty(none);
    }

    [Fact]
    public void Every_meaning_quotes_its_rule_expression_and_its_for_duration()
    {
        var failures = new List<string>();
        var runbooks = All.ToDictionary(r => r.Name, StringComparer.Ordinal);
        foreach (var rule in Rules)
        {
            if (!runbooks.TryGetValue(rule.Name, out var r) || r.Section("Meaning") is not { } meaning) continue;
            var expr = Runbook.NormalizeWhitespace(rule.Expr);
            if (!meaning.Blocks.Any(b => b.Language == "promql" && Runbook.NormalizeWhitespace(b.Text) == expr))
            {
                failures.Add($"{r.File}: ## Meaning has no ```promql block holding the rule's expression\n    {expr}");
            }
            var text = string.Join("\n", meaning.Lines.Select(l => l.Text));
            var stated = rule.For is { } duration
                ? text.Contains($"`for: {duration}`", StringComparison.Ordinal)
                : text.Contains("no `for:`", StringComparison.OrdinalIgnoreCase);
            if (!stated)
            {
                failures.Add($"{r.File}: ## Meaning does not state {(rule.For is { } d ? $"`for: {d}`" : "no `for:`")} as the rule has it");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Every_runbook_lists_promql_in_its_first_checks()
    {
        var failures = All
            .Where(r => r.Section("First checks") is not { } s || !s.Blocks.Any(b => b.Language == "promql"))
            .Select(r => $"{r.File}: ## First checks has no ```promql block")
            .ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Every_runbook_query_parses_with_promtool_and_names_only_known_metrics()
    {
        var queries = All.SelectMany(r => r.PromQlExpressions().Select(q => (Runbook: r, q.Block, q.Expr))).ToList();
        Assert.NotEmpty(queries);
        var failures = new List<string>();
        var errors = Promtool.ParseErrors(queries.Select(q => q.Expr).ToList());
        foreach (var (i, error) in errors.OrderBy(e => e.Key))
        {
            failures.Add($"{queries[i].Runbook.File}: block at line {queries[i].Block.Line}: {error}\n    {PromQl.Short(queries[i].Expr)}");
        }
        var known = new KnownMetrics();
        foreach (var (runbook, block, expr) in queries)
        {
            foreach (var metric in PromQl.MetricNames(expr).Where(m => !known.IsKnown(m)))
            {
                failures.Add($"{runbook.File}: block at line {block.Line}: unknown metric {metric}");
            }
        }
        Assert.True(failures.Count == 0,
            $"runbook PromQL must parse and name metrics of {Repo.Relative(known.ContractPath)} or the recording rules:\n" + string.Join("\n", failures.Distinct()));
    }

    [Fact]
    public void Every_runbook_log_query_selects_by_the_labels_promtail_sets()
    {
        var failures = new List<string>();
        foreach (var r in All)
        {
            foreach (var block in r.Blocks.Where(b => b.Language == "logql"))
            {
                var selector = StreamSelector().Match(block.Text);
                if (!selector.Success)
                {
                    failures.Add($"{r.File}: logql block at line {block.Line} has no stream selector {{...}}");
                    continue;
                }
                foreach (Match m in LabelMatcher().Matches(QuotedString().Replace(selector.Groups["matchers"].Value, "\"\"")))
                {
                    if (!LokiLabels.Contains(m.Groups["label"].Value))
                    {
                        failures.Add($"{r.File}: logql block at line {block.Line} selects by {m.Groups["label"].Value}, which Promtail does not set ({string.Join(", ", LokiLabels)})");
                    }
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Every_link_is_a_grafana_dashboard_a_runbook_or_an_https_url()
    {
        var failures = new List<string>();
        foreach (var r in All)
        {
            foreach (var (line, target) in r.Links())
            {
                if (target.StartsWith("grafana:/d/", StringComparison.Ordinal)
                    || target.StartsWith("/runbooks/", StringComparison.Ordinal)
                    || target.StartsWith("https://", StringComparison.Ordinal))
                {
                    continue;
                }
                failures.Add($"{r.File}: line {line}: link target '{target}' is none of grafana:/d/<uid>, /runbooks/<AlertName>, https://...");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Every_linked_grafana_dashboard_and_variable_exists_in_grafana()
    {
        var dashboards = Dashboard.LoadAll().ToDictionary(d => d.Uid, StringComparer.Ordinal);
        Assert.NotEmpty(dashboards);
        var failures = new List<string>();
        var linked = 0;
        foreach (var r in All)
        {
            foreach (var (line, target) in r.Links().Where(l => l.Target.StartsWith("grafana:", StringComparison.Ordinal)))
            {
                linked++;
                var m = GrafanaLink().Match(target);
                if (!m.Success)
                {
                    failures.Add($"{r.File}: line {line}: '{target}' is not grafana:/d/<uid>[?var-<name>=<value>&...]");
                    continue;
                }
                if (!dashboards.TryGetValue(m.Groups["uid"].Value, out var dashboard))
                {
                    failures.Add($"{r.File}: line {line}: no dashboard with uid {m.Groups["uid"].Value} in grafana/dashboards/");
                    continue;
                }
                var variables = dashboard.Variables().Select(v => v["name"]?.GetValue<string>()).ToHashSet();
                foreach (var parameter in m.Groups["query"].Value.Split('&', StringSplitOptions.RemoveEmptyEntries))
                {
                    var name = parameter.Split('=')[0];
                    if (!name.StartsWith("var-", StringComparison.Ordinal) || !variables.Contains(name[4..]))
                    {
                        failures.Add($"{r.File}: line {line}: {dashboard.Uid} has no variable for the parameter '{parameter}'");
                    }
                }
            }
        }
        Assert.True(linked > 0, "no runbook links a Grafana dashboard");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Every_linked_runbook_exists()
    {
        var names = All.Select(r => r.Name).ToHashSet(StringComparer.Ordinal);
        var failures = All
            .SelectMany(r => r.Links().Where(l => l.Target.StartsWith("/runbooks/", StringComparison.Ordinal)).Select(l => (r, l.Line, l.Target)))
            .Where(x => !names.Contains(x.Target["/runbooks/".Length..]))
            .Select(x => $"{x.r.File}: line {x.Line}: {x.Target} is not a runbook")
            .ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [GeneratedRegex(@"^(\d+\.|[-*+])\s")]
    private static partial Regex ListItem();

    [GeneratedRegex(@"\{(?<matchers>[^}]*)\}")]
    private static partial Regex StreamSelector();

    [GeneratedRegex(@"(?<label>[A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)")]
    private static partial Regex LabelMatcher();

    [GeneratedRegex(@"""(?:[^""\\]|\\.)*""")]
    private static partial Regex QuotedString();

    [GeneratedRegex(@"^grafana:/d/(?<uid>[A-Za-z0-9_-]+)(\?(?<query>[^#]*))?$")]
    private static partial Regex GrafanaLink();
}
