using System.Globalization;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace B25.EndToEnd.Tests.Stack;

/// <summary>
/// Copies the repository's Prometheus and Alertmanager configuration into a temporary folder and
/// rewrites only what a single machine needs: host names to 127.0.0.1 and the test's ports, 1 s
/// scrape / evaluation / grouping intervals, the token file, and the `for:` durations divided by
/// <see cref="ForDivisor"/> (1m becomes 2s, 5m becomes 10s: every alert keeps its relative
/// patience). Expressions, labels, routes and inhibitions are used as they are.
/// </summary>
internal static partial class StackConfig
{
    public const int ForDivisor = 30;

    /// <summary>The B25 service jobs, simulated here.</summary>
    public static readonly string[] ServiceJobs =
        ["market-data", "order-execution", "strategy-engine", "account-monitor", "risk-manager", "config-service", "dashboard-server"];

    /// <summary>
    /// Writes prometheus.yml, rules/ and alerts/ into <paramref name="dir"/>. Jobs for components not
    /// run by the test (exporters, Loki, Promtail, blackbox probes) are dropped, so that every target
    /// that remains can be up. Returns the jobs kept.
    /// </summary>
    public static IReadOnlyList<string> WritePrometheus(string dir, int prometheusPort, int alertmanagerPort, int alertingPort,
        IReadOnlyDictionary<string, int> servicePorts)
    {
        var yaml = Load(Repository.PathOf("prometheus", "prometheus.yml"));
        var root = (YamlMappingNode)yaml.Documents[0].RootNode;

        var global = (YamlMappingNode)root["global"];
        global.Children[Key("scrape_interval")] = new YamlScalarNode("1s");
        global.Children[Key("scrape_timeout")] = new YamlScalarNode("1s");
        global.Children[Key("evaluation_interval")] = new YamlScalarNode("1s");
        if (global.Children.TryGetValue(Key("external_labels"), out var external))
        {
            var labels = (YamlMappingNode)external;
            labels.Children[Key("environment")] = new YamlScalarNode("e2e");
        }

        foreach (var manager in ((YamlSequenceNode)((YamlMappingNode)root["alerting"])["alertmanagers"]).Cast<YamlMappingNode>())
        {
            manager.Children[Key("static_configs")] = new YamlSequenceNode(
                new YamlMappingNode(Key("targets"), new YamlSequenceNode(new YamlScalarNode($"127.0.0.1:{alertmanagerPort}"))));
        }

        var localTargets = new Dictionary<string, int>(servicePorts)
        {
            ["prometheus"] = prometheusPort,
            ["alertmanager"] = alertmanagerPort,
            ["b25-alerting"] = alertingPort,
        };
        var kept = new YamlSequenceNode();
        var keptJobs = new List<string>();
        foreach (var job in ((YamlSequenceNode)root["scrape_configs"]).Cast<YamlMappingNode>())
        {
            var name = ((YamlScalarNode)job["job_name"]).Value!;
            if (!localTargets.TryGetValue(name, out var port))
            {
                continue;
            }

            job.Children[Key("scrape_interval")] = new YamlScalarNode("1s");
            job.Children[Key("scrape_timeout")] = new YamlScalarNode("1s");
            foreach (var staticConfig in ((YamlSequenceNode)job["static_configs"]).Cast<YamlMappingNode>())
            {
                staticConfig.Children[Key("targets")] = new YamlSequenceNode(new YamlScalarNode($"127.0.0.1:{port}"));
            }

            kept.Add(job);
            keptJobs.Add(name);
        }

        root.Children[Key("scrape_configs")] = kept;
        Save(yaml, Path.Combine(dir, "prometheus.yml"));

        foreach (var folder in new[] { "rules", "alerts" })
        {
            Directory.CreateDirectory(Path.Combine(dir, folder));
            foreach (var file in Directory.GetFiles(Repository.PathOf("prometheus", folder), "*.yml"))
            {
                File.WriteAllText(Path.Combine(dir, folder, Path.GetFileName(file)), Shorten(File.ReadAllText(file)));
            }
        }

        return keptJobs;
    }

    /// <summary>
    /// Writes alertmanager.yml into <paramref name="dir"/>: the repository's routes, inhibitions and
    /// receivers, the B25.Alerting webhook pointed at the local service with a token file, 1 s
    /// grouping, and on every receiver an Alertmanager slack_configs to the stand-in as well: the
    /// same notification, sent by Alertmanager itself, is the baseline the service is measured against.
    /// </summary>
    public static void WriteAlertmanager(string dir, int alertingPort, string tokenFile, SlackStandIn slack)
    {
        var yaml = Load(Repository.PathOf("alertmanager", "alertmanager.yml"));
        var root = (YamlMappingNode)yaml.Documents[0].RootNode;
        ShortenRoute((YamlMappingNode)root["route"], isRoot: true);

        foreach (var receiver in ((YamlSequenceNode)root["receivers"]).Cast<YamlMappingNode>())
        {
            var name = ((YamlScalarNode)receiver["name"]).Value!;
            if (receiver.Children.TryGetValue(Key("webhook_configs"), out var webhooks))
            {
                // Fresh nodes: the repository shares one webhook list between receivers through a YAML anchor.
                receiver.Children[Key("webhook_configs")] = new YamlSequenceNode(((YamlSequenceNode)webhooks).Cast<YamlMappingNode>().Select(webhook =>
                {
                    var url = ((YamlScalarNode)webhook["url"]).Value!;
                    return new YamlMappingNode(
                        Key("url"), new YamlScalarNode($"http://127.0.0.1:{alertingPort}{new Uri(url).PathAndQuery}"),
                        Key("send_resolved"), new YamlScalarNode("true"),
                        Key("http_config"), new YamlMappingNode(
                            Key("authorization"), new YamlMappingNode(
                                Key("type"), new YamlScalarNode("Bearer"),
                                Key("credentials_file"), new YamlScalarNode(tokenFile))));
                }));
            }

            receiver.Children[Key("slack_configs")] = new YamlSequenceNode(new YamlMappingNode(
                Key("api_url"), new YamlScalarNode(slack.WebhookUrl(name)),
                Key("channel"), new YamlScalarNode("#alertmanager-baseline"),
                Key("send_resolved"), new YamlScalarNode("true")));
        }

        Save(yaml, Path.Combine(dir, "alertmanager.yml"));
    }

    /// <summary>
    /// Divides every `for:` by <see cref="ForDivisor"/> (at least 1s) and sets rule group intervals to 1s. A rule on
    /// <c>absent(...)</c> keeps at least <see cref="AbsentForFloorSeconds"/>: it is true from Prometheus' start until the
    /// first scrape of its target, which on a loaded machine came later than a shortened 2 s and paged AlertingServiceDown
    /// at the start of a run (a real `for: 1m` outlasts that by far).
    /// </summary>
    public static string Shorten(string rulesYaml)
    {
        var lines = rulesYaml.Split('\n');
        var absentRule = false;
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].TrimStart().StartsWith("- alert:", StringComparison.Ordinal)) absentRule = false;
            if (lines[i].TrimStart().StartsWith("expr:", StringComparison.Ordinal) && lines[i].Contains("absent(", StringComparison.Ordinal)) absentRule = true;
            var floor = absentRule ? AbsentForFloorSeconds : 1;
            lines[i] = ForLine().Replace(lines[i], m =>
            {
                var seconds = Math.Max(floor, (int)Math.Round(ParseSeconds(m.Groups["value"].Value) / ForDivisor));
                return $"{m.Groups["prefix"].Value}{seconds}s";
            });
        }
        return IntervalLine().Replace(string.Join('\n', lines), m => $"{m.Groups["prefix"].Value}1s");
    }

    /// <summary>The shortest `for:` of a rule on <c>absent(...)</c> in the local stack.</summary>
    public const int AbsentForFloorSeconds = 30;

    public static double ParseSeconds(string duration)
    {
        var total = 0.0;
        var matches = DurationPart().Matches(duration.Trim().Trim('\'', '"'));
        Assert.True(matches.Count > 0, $"not a Prometheus duration: {duration}");
        foreach (Match part in matches)
        {
            var n = double.Parse(part.Groups[1].Value, CultureInfo.InvariantCulture);
            total += part.Groups[2].Value switch
            {
                "ms" => n / 1000,
                "s" => n,
                "m" => n * 60,
                "h" => n * 3600,
                "d" => n * 86400,
                "w" => n * 604800,
                _ => n * 31536000,
            };
        }

        return total;
    }

    private static void ShortenRoute(YamlMappingNode route, bool isRoot)
    {
        if (isRoot || route.Children.ContainsKey(Key("group_wait")))
        {
            var wait = route.Children.TryGetValue(Key("group_wait"), out var w) ? ParseSeconds(((YamlScalarNode)w).Value!) : 1;
            route.Children[Key("group_wait")] = new YamlScalarNode(wait < 1 ? ((YamlScalarNode)w!).Value! : "1s");
        }

        if (isRoot || route.Children.ContainsKey(Key("group_interval")))
        {
            route.Children[Key("group_interval")] = new YamlScalarNode("1s");
        }

        if (route.Children.TryGetValue(Key("routes"), out var children))
        {
            foreach (var child in ((YamlSequenceNode)children).Cast<YamlMappingNode>())
            {
                ShortenRoute(child, isRoot: false);
            }
        }
    }

    private static YamlScalarNode Key(string key) => new(key);

    private static YamlStream Load(string path)
    {
        var yaml = new YamlStream();
        using var reader = File.OpenText(path);
        yaml.Load(reader);
        return yaml;
    }

    private static void Save(YamlStream yaml, string path)
    {
        using var writer = File.CreateText(path);
        yaml.Save(writer, assignAnchors: false);
    }

    [GeneratedRegex(@"^(?<prefix>\s+for:\s*)(?<value>['""]?[0-9a-z]+['""]?)\s*$", RegexOptions.Multiline)]
    private static partial Regex ForLine();

    [GeneratedRegex(@"^(?<prefix>\s+interval:\s*)(?<value>\S+)\s*$", RegexOptions.Multiline)]
    private static partial Regex IntervalLine();

    [GeneratedRegex(@"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")]
    private static partial Regex DurationPart();
}
