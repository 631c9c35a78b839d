using YamlDotNet.RepresentationModel;

namespace B25.Simulator.Tests;

/// <summary>One B25 service metric of prometheus/metrics-contract.yaml.</summary>
internal sealed record ContractMetric(string Name, string Type, IReadOnlyList<string> Labels, IReadOnlyList<string> Services)
{
    public override string ToString() => Name;
}

/// <summary>Reads prometheus/metrics-contract.yaml from the repository (the single source of metric names).</summary>
internal static class MetricsContract
{
    private static readonly Lazy<IReadOnlyList<ContractMetric>> Loaded = new(Load);

    public static IReadOnlyList<ContractMetric> Metrics => Loaded.Value;

    public static string RepositoryRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "B25.Alerting.sln")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException("B25.Alerting.sln not found above " + AppContext.BaseDirectory);
        }
    }

    public static IEnumerable<ContractMetric> For(string service) => Metrics.Where(m => m.Services.Contains(service));

    private static IReadOnlyList<ContractMetric> Load()
    {
        var path = Path.Combine(RepositoryRoot, "prometheus", "metrics-contract.yaml");
        var yaml = new YamlStream();
        using (var reader = File.OpenText(path))
        {
            yaml.Load(reader);
        }

        var root = (YamlMappingNode)yaml.Documents[0].RootNode;
        var metrics = (YamlSequenceNode)root.Children[new YamlScalarNode("metrics")];
        return metrics.Children.Cast<YamlMappingNode>().Select(m => new ContractMetric(
            Scalar(m, "name"),
            Scalar(m, "type"),
            Sequence(m, "labels"),
            Sequence(m, "services"))).ToArray();
    }

    private static string Scalar(YamlMappingNode node, string key) =>
        ((YamlScalarNode)node.Children[new YamlScalarNode(key)]).Value!;

    private static string[] Sequence(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var value)
            ? ((YamlSequenceNode)value).Children.Cast<YamlScalarNode>().Select(s => s.Value!).ToArray()
            : [];
}
