namespace B25.Alerting.Delivery;

/// <summary>A pending delivery as the dispatcher hands it to a channel notifier.</summary>
internal sealed record PendingDelivery(long Id, string IncidentId, string Channel, string Target, string Kind, long Revision,
    string Payload, long Attempts, long AcceptedAt);

/// <summary>The message a target already holds for an incident (Slack: channel id and ts).</summary>
internal sealed record DeliveredMessage(string Address, string MessageId);

/// <summary>The incident as a notifier renders it: the state now, not the state when the change was queued.</summary>
internal sealed record IncidentView(
    string Id,
    string Receiver,
    string GroupKey,
    string State,
    long Revision,
    DateTimeOffset OpenedAt,
    DateTimeOffset? ClosedAt,
    IReadOnlyDictionary<string, string> GroupLabels,
    IReadOnlyDictionary<string, string> CommonLabels,
    IReadOnlyDictionary<string, string> CommonAnnotations,
    string ExternalUrl,
    int FiringCount,
    int ResolvedCount,
    IReadOnlyList<AlertView> Alerts);

internal sealed record AlertView(
    string Fingerprint,
    string StartsAt,
    string Status,
    string? EndsAt,
    IReadOnlyDictionary<string, string> Labels,
    IReadOnlyDictionary<string, string> Annotations,
    string GeneratorUrl);

internal enum DeliveryOutcomeKind { Sent, Merged, Retry, Failed }

internal sealed record DeliveryOutcome(long DeliveryId, DeliveryOutcomeKind Kind, string? Error = null, TimeSpan? RetryAfter = null);

/// <summary>What a notifier did with the pending deliveries of one incident at one target.</summary>
internal sealed record DeliveryBatchResult(IReadOnlyList<DeliveryOutcome> Outcomes, DeliveredMessage? NewMessage);

/// <summary>One channel (Slack, ...): renders and sends the pending deliveries of one incident at one target.</summary>
internal interface IChannelNotifier
{
    string Channel { get; }

    Task<DeliveryBatchResult> DeliverAsync(IncidentView incident, string target, IReadOnlyList<PendingDelivery> pending,
        DeliveredMessage? message, CancellationToken cancellationToken);
}
