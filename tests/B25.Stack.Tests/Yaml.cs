using YamlDotNet.RepresentationModel;

namespace B25.Stack.Tests;

/// <summary>Small, null-tolerant accessors over YamlDotNet's representation model.</summary>
internal static class Yaml
{
    public static YamlNode? Get(this YamlNode? node, string key) =>
        node is YamlMappingNode map && map.Children.TryGetValue(new YamlScalarNode(key), out var value)
            ? value
            : null;

    public static string? Str(this YamlNode? node, string key) => (node.Get(key) as YamlScalarNode)?.Value;

    public static string? Str(this YamlNode? node) => (node as YamlScalarNode)?.Value;

    public static IEnumerable<YamlNode> Items(this YamlNode? node, string key) =>
        node.Get(key) is YamlSequenceNode seq ? seq.Children : [];

    public static IEnumerable<YamlNode> Items(this YamlNode? node) =>
        node is YamlSequenceNode seq ? seq.Children : [];

    public static IEnumerable<KeyValuePair<string, YamlNode>> Entries(this YamlNode? node, string key) =>
        node.Get(key).Entries();

    public static IEnumerable<KeyValuePair<string, YamlNode>> Entries(this YamlNode? node) =>
        node is YamlMappingNode map
            ? map.Children.Select(kv => new KeyValuePair<string, YamlNode>(((YamlScalarNode)kv.Key).Value ?? "", kv.Value))
            : [];

    /// <summary>Every scalar value in the tree, with the key it sits under (null in sequences).</summary>
    public static IEnumerable<(string? Key, string Value)> Scalars(this YamlNode? node, string? key = null)
    {
        switch (node)
        {
            case YamlScalarNode scalar when scalar.Value is not null:
                yield return (key, scalar.Value);
                break;
            case YamlSequenceNode seq:
                foreach (var child in seq.Children)
                {
                    foreach (var s in child.Scalars(key)) yield return s;
                }
                break;
            case YamlMappingNode map:
                foreach (var (k, v) in map.Children)
                {
                    foreach (var s in v.Scalars(((YamlScalarNode)k).Value)) yield return s;
                }
                break;
        }
    }
}
