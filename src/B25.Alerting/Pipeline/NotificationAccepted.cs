namespace B25.Alerting.Pipeline;

/// <summary>A notification was journaled and waits for the incident state machine. Internal to the service.</summary>
public sealed record NotificationAccepted(string NotificationId, string GroupId, Guid PartitionKey);
