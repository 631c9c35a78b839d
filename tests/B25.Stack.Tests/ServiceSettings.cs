using System.Text.Json;
using System.Text.RegularExpressions;

namespace B25.Stack.Tests;

/// <summary>
/// The configuration keys B25.Alerting knows: every key of src/B25.Alerting/appsettings.json (array
/// indexes and the entries of empty sections such as PagerDuty:RoutingKeys are open), plus the
/// Storage keys of the PostgreSQL provider that appsettings.json does not spell out.
/// </summary>
internal static partial class ServiceSettings
{
    /// <summary>Storage keys of the several-replica set-up (defaults in the service, not in appsettings.json).</summary>
    public static readonly string[] StorageKeys =
        ["Storage:Provider", "Storage:ConnectionString", "Storage:ClaimLease", "Storage:ReplicaName"];

    /// <summary>Settings whose values are secrets: they come from a secret store, never from a file in the repository.</summary>
    public static readonly string[] SecretKeys =
    [
        "Storage:ConnectionString", "Bus:RabbitMq:Uri", "Webhook:BearerToken", "Slack:BotToken",
        "PagerDuty:RoutingKey", "PagerDuty:RoutingKeys:*", "Smtp:Password", "Slack:SigningSecret", "PagerDuty:WebhookSecret",
        "Api:BearerToken",
    ];

    private static readonly Lazy<HashSet<string>> KnownKeys = new(Load);

    /// <summary>`Section__Key` (environment form) or `Section:Key`, with indexes as `*`.</summary>
    public static string Normalise(string key) =>
        string.Join(':', key.Replace("__", ":", StringComparison.Ordinal).Split(':').Select(s => Index().IsMatch(s) ? "*" : s));

    public static bool IsKnown(string key)
    {
        var normal = Normalise(key);
        if (KnownKeys.Value.Contains(normal)) return true;
        // An entry of an open section (a dictionary such as PagerDuty:RoutingKeys:<name>).
        var colon = normal.LastIndexOf(':');
        return colon > 0 && KnownKeys.Value.Contains(normal[..colon] + ":*");
    }

    public static bool IsSecret(string key)
    {
        var normal = Normalise(key);
        var colon = normal.LastIndexOf(':');
        return SecretKeys.Contains(normal, StringComparer.OrdinalIgnoreCase)
               || (colon > 0 && SecretKeys.Contains(normal[..colon] + ":*", StringComparer.OrdinalIgnoreCase));
    }

    private static HashSet<string> Load()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Repo.PathOf("src", "B25.Alerting", "appsettings.json")));
        var keys = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        Walk(json.RootElement, "", keys);
        keys.UnionWith(StorageKeys);
        return keys;
    }

    private static void Walk(JsonElement element, string path, HashSet<string> keys)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                if (path.Length > 0) keys.Add(path);
                if (!element.EnumerateObject().Any() && path.Length > 0) keys.Add(path + ":*");
                foreach (var property in element.EnumerateObject())
                    Walk(property.Value, path.Length == 0 ? property.Name : $"{path}:{property.Name}", keys);
                break;
            case JsonValueKind.Array:
                keys.Add(path);
                keys.Add(path + ":*");
                foreach (var item in element.EnumerateArray()) Walk(item, path + ":*", keys);
                break;
            default:
                keys.Add(path);
                break;
        }
    }

    [GeneratedRegex(@"^\d+$")]
    private static partial Regex Index();
}
