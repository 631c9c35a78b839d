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

    /// <summary>
    /// The change, its alerts named by the labels that tell them apart among the notification's alerts
    /// (<c>OrderBookStale symbol=ETHUSDT</c>), not by labels the whole group shares.
    /// </summary>
    public static ChangeSummary Of(IncidentTransition transition, IReadOnlyDictionary<AlertKey, AlertmanagerAlert> alerts,
        Presentation.AlertNaming naming, IReadOnlyDictionary<string, string> groupLabels)
    {
        var keys = naming.DistinguishingKeys(alerts.Values.Select(a => (IReadOnlyDictionary<string, string>)(a.Labels ?? [])).ToList(), groupLabels);
        string Name(AlertKey key) => Presentation.AlertNaming.Name(alerts[key].Labels ?? [], keys);
        return new ChangeSummary(
            transition.Kind.ToString().ToLowerInvariant(),
            transition.Joined.Count,
            transition.Resolved.Count,
            transition.Joined.Take(MaxNames).Select(Name).ToList(),
            transition.Resolved.Take(MaxNames).Select(Name).ToList());
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
