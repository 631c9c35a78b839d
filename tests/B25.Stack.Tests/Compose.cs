using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace B25.Stack.Tests;

/// <summary>compose/docker-compose.yml, read as data.</summary>
internal sealed partial class Compose
{
    public static string Dir => Repo.PathOf("compose");

    public static string FilePath => Path.Combine(Dir, "docker-compose.yml");

    public YamlMappingNode Root { get; } = Repo.LoadYaml(FilePath);

    public IEnumerable<KeyValuePair<string, YamlNode>> Services => Root.Entries("services");

    public YamlNode? Service(string name) => Root.Get("services").Get(name);

    /// <summary>Host names a service answers to on the compose network: its name and its aliases.</summary>
    public IEnumerable<string> HostNames(string service, YamlNode node)
    {
        yield return service;
        foreach (var (_, network) in node.Entries("networks"))
        {
            foreach (var alias in network.Items("aliases")) yield return alias.Str()!;
        }
    }

    /// <summary>The service that answers to a host name, or null.</summary>
    public string? ServiceForHost(string host) =>
        Services.Where(s => HostNames(s.Key, s.Value).Contains(host, StringComparer.Ordinal)).Select(s => s.Key).FirstOrDefault();

    /// <summary>Container ports a service listens on, from `expose:` and `ports:`.</summary>
    public static HashSet<int> ServedPorts(YamlNode service)
    {
        var ports = new HashSet<int>();
        foreach (var e in service.Items("expose")) AddRange(ports, e.Str()!.Split('/')[0]);
        foreach (var p in service.Items("ports"))
        {
            var text = p is YamlMappingNode ? p.Str("target")! : p.Str()!;
            // [ip:][host:]container[/proto]: the container port is the last part.
            AddRange(ports, text.Split('/')[0].Split(':')[^1]);
        }
        return ports;
    }

    private static void AddRange(HashSet<int> ports, string spec)
    {
        var parts = spec.Split('-');
        var first = int.Parse(parts[0]);
        var last = parts.Length > 1 ? int.Parse(parts[1]) : first;
        for (var p = first; p <= last; p++) ports.Add(p);
    }

    /// <summary>Bind-mount sources that point into the repo (relative paths), resolved.</summary>
    public IEnumerable<(string Service, string Source, string Target)> RepoMounts()
    {
        foreach (var (name, service) in Services)
        {
            foreach (var v in service.Items("volumes"))
            {
                string source, target;
                if (v is YamlMappingNode)
                {
                    if (v.Str("type") != "bind") continue;
                    source = v.Str("source")!;
                    target = v.Str("target")!;
                }
                else
                {
                    var parts = v.Str()!.Split(':');
                    source = parts[0];
                    target = parts.Length > 1 ? parts[1] : parts[0];
                }
                if (source.StartsWith("./", StringComparison.Ordinal) || source.StartsWith("../", StringComparison.Ordinal))
                {
                    yield return (name, Path.GetFullPath(Path.Combine(Dir, source)), target);
                }
            }
        }
    }

    /// <summary>A service's environment, whether written as a mapping or as a list of KEY=value.</summary>
    public static Dictionary<string, string> Environment(YamlNode? service)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in service.Entries("environment")) env[key] = value.Str() ?? "";
        foreach (var item in service.Items("environment"))
        {
            var text = item.Str()!;
            var eq = text.IndexOf('=');
            if (eq < 0) env[text] = "";
            else env[text[..eq]] = text[(eq + 1)..];
        }
        return env;
    }

    /// <summary>Variables the file interpolates: ${VAR}, ${VAR:-x}, ${VAR:?msg}, $VAR (not $$).</summary>
    public static IEnumerable<string> InterpolatedVariables()
    {
        var text = File.ReadAllText(FilePath);
        var withoutComments = string.Join('\n', text.Split('\n').Select(l => CommentLine().IsMatch(l) ? "" : l));
        return Interpolation().Matches(withoutComments)
            .Select(m => m.Groups["a"].Success ? m.Groups["a"].Value : m.Groups["b"].Value)
            .Distinct();
    }

    [GeneratedRegex(@"^\s*#")]
    private static partial Regex CommentLine();

    [GeneratedRegex(@"(?<!\$)\$\{(?<a>[A-Za-z_][A-Za-z0-9_]*)|(?<!\$)\$(?<b>[A-Za-z_][A-Za-z0-9_]*)")]
    private static partial Regex Interpolation();
}
