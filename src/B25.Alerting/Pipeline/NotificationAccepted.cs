namespace B25.Alerting.Pipeline;

/// <summary>A notification was journaled and waits for the incident state machine. Internal to the service.</summary>
/// <param name="BodyBytes">The journaled body's size when known (0 when republished from the journal): a large one is followed by a
/// compacting collection once applied (<see cref="LargeNotificationMemory"/>).</param>
public sealed record NotificationAccepted(string NotificationId, string GroupId, Guid PartitionKey, long BodyBytes = 0);
