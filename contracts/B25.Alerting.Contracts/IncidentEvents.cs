namespace B25.Alerting.Contracts;

/// <summary>An incident opened: the first notification in which its alert group fires.</summary>
/// <param name="IncidentId">Stable id of the incident in B25.Alerting.</param>
/// <param name="Receiver">Alertmanager receiver of the group.</param>
/// <param name="GroupKey">Alertmanager group key.</param>
/// <param name="Title">Short title (alert name and group labels).</param>
/// <param name="Severity">The group's <c>severity</c> label, empty when its alerts differ.</param>
/// <param name="GroupLabels">Alertmanager's group labels.</param>
/// <param name="FiringCount">Alerts firing when it opened.</param>
/// <param name="OpenedAt">When B25.Alerting opened it.</param>
public sealed record IncidentOpened(
    string IncidentId,
    string Receiver,
    string GroupKey,
    string Title,
    string Severity,
    IReadOnlyDictionary<string, string> GroupLabels,
    int FiringCount,
    DateTimeOffset OpenedAt);

/// <summary>Every alert of the incident resolved; the incident is closed.</summary>
/// <param name="IncidentId">The incident.</param>
/// <param name="OpenedAt">When it opened.</param>
/// <param name="ResolvedAt">When it closed.</param>
/// <param name="AlertCount">Alerts it held over its life.</param>
public sealed record IncidentResolved(string IncidentId, DateTimeOffset OpenedAt, DateTimeOffset ResolvedAt, int AlertCount);

/// <summary>Someone acknowledged the incident (in Slack or through the API).</summary>
/// <param name="IncidentId">The incident.</param>
/// <param name="AcknowledgedBy">Who.</param>
/// <param name="AcknowledgedAt">When.</param>
public sealed record IncidentAcknowledged(string IncidentId, string AcknowledgedBy, DateTimeOffset AcknowledgedAt);
