using System.Text.Json.Serialization;
using B25.Alerting.Incidents;
using B25.Alerting.Webhooks;

namespace B25.Alerting.Delivery;

/// <summary>What one incident change did, kept with its deliveries for the thread reply.</summary>
internal sealed record ChangeSummary(
    string Kind,
    int JoinedCount,
    int ResolvedCount,
    IReadOnlyList<string> Joined,
    IReadOnlyList<string> Resolved)
{
    private const int MaxNames = 10;

    public static ChangeSummary Of(IncidentTransition transition, IReadOnlyDictionary<AlertKey, AlertmanagerAlert> alerts) => new(
        transition.Kind.ToString().ToLowerInvariant(),
        transition.Joined.Count,
        transition.Resolved.Count,
        transition.Joined.Take(MaxNames).Select(k => AlertName(alerts[k])).ToList(),
        transition.Resolved.Take(MaxNames).Select(k => AlertName(alerts[k])).ToList());

    /// <summary>A short name a person recognises: alertname and the labels that usually tell alerts apart.</summary>
    public static string AlertName(AlertmanagerAlert alert) => AlertName(alert.Labels ?? []);

    public static string AlertName(IReadOnlyDictionary<string, string> labels)
    {
        var name = labels.TryGetValue("alertname", out var n) ? n : "alert";
        var detail = new[] { "service", "instance", "symbol", "exchange", "strategy", "job" }
            .Where(labels.ContainsKey)
            .Take(2)
            .Select(k => $"{k}={labels[k]}");
        var suffix = string.Join(", ", detail);
        return suffix.Length == 0 ? name : $"{name} ({suffix})";
    }
}

/// <summary>
/// A line another channel adds to an incident's Slack threads (e.g. the risk manager's answer).
/// The text is Slack mrkdwn in which alert data is already escaped.
/// </summary>
internal sealed record SlackNote(string Text);

[JsonSerializable(typeof(ChangeSummary))]
[JsonSerializable(typeof(SlackNote))]
[JsonSerializable(typeof(List<ChangeSummary>))]
internal sealed partial class DeliveryJsonContext : JsonSerializerContext;
