using YamlDotNet.RepresentationModel;

namespace B25.Stack.Tests;

/// <summary>
/// The metric names a query may select: prometheus/metrics-contract.yaml (services' metrics,
/// exporters, recorded series), the `record:` names of prometheus/ rule files, and the
/// B25.Alerting service's own b25_alerting_* metrics.
/// </summary>
internal sealed class KnownMetrics
{
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public string ContractPath { get; } = Repo.PathOf("prometheus", "metrics-contract.yaml");

    public KnownMetrics()
    {
        if (!File.Exists(ContractPath))
        {
            throw new FileNotFoundException($"the metrics contract {Repo.Relative(ContractPath)} is missing");
        }
        var contract = Repo.LoadYaml(ContractPath);
        foreach (var section in new[] { "metrics", "exporters" })
        {
            foreach (var item in contract.Items(section))
            {
                var name = item.Str("name");
                if (name is null) continue;
                if (item.Str("type") == "histogram")
                {
                    // The contract's reading rule: a histogram's series are _bucket, _sum, _count;
                    // the bare base name is not a series.
                    _names.Add(name + "_bucket");
                    _names.Add(name + "_sum");
                    _names.Add(name + "_count");
                }
                else
                {
                    _names.Add(name);
                }
            }
        }
        foreach (var item in contract.Items("recorded"))
        {
            if (item.Str("name") is { } name) _names.Add(name);
        }
        foreach (var file in RuleFiles())
        {
            foreach (var group in Repo.LoadYaml(file).Items("groups"))
            {
                foreach (var rule in group.Items("rules"))
                {
                    if (rule.Str("record") is { } record) _names.Add(record);
                }
            }
        }
    }

    public bool IsKnown(string metric) =>
        _names.Contains(metric) || metric.StartsWith("b25_alerting_", StringComparison.Ordinal);

    public int Count => _names.Count;

    /// <summary>Prometheus rule files (anything under prometheus/ with a top-level `groups:`).</summary>
    public static IEnumerable<string> RuleFiles()
    {
        var dir = Repo.PathOf("prometheus");
        if (!Directory.Exists(dir)) yield break;
        foreach (var file in Directory.EnumerateFiles(dir, "*.*", SearchOption.AllDirectories).Order())
        {
            if (!(file.EndsWith(".yml", StringComparison.Ordinal) || file.EndsWith(".yaml", StringComparison.Ordinal))) continue;
            // promtool unit-test files also have no `groups:`; only rule files do.
            YamlMappingNode root;
            try { root = Repo.LoadYaml(file); }
            catch (InvalidDataException) { continue; }
            if (root.Get("groups") is YamlSequenceNode) yield return file;
        }
    }
}
