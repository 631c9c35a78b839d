namespace B25.Alerting.Contracts;

/// <summary>
/// B25.Alerting asks the risk manager to stop trading for a scope, because an alert whose route asks
/// for it (by default: label action="emergency-stop") started firing. Sent at most once per alert
/// occurrence; <see cref="CommandId"/> is derived from (<see cref="AlertFingerprint"/>,
/// <see cref="AlertStartsAt"/>), so a consumer that sees the same id twice must treat it as one command.
/// </summary>
/// <param name="CommandId">Deterministic id of this command: the same alert occurrence always gives the same id.</param>
/// <param name="IncidentId">The B25.Alerting incident the alert belongs to.</param>
/// <param name="AlertName">The alert's <c>alertname</c> label.</param>
/// <param name="AlertFingerprint">Alertmanager's fingerprint of the alert's labels.</param>
/// <param name="AlertStartsAt">When the alert started firing (with the fingerprint, identifies the occurrence).</param>
/// <param name="Scope">The labels that say what to stop: exchange, symbol, strategy, account, service when present.</param>
/// <param name="Reason">Human-readable reason: the alert's summary annotation, or its name.</param>
/// <param name="RequestedAt">When B25.Alerting sent the request.</param>
/// <param name="Labels">Every label of the alert.</param>
public sealed record EmergencyStopRequested(
    Guid CommandId,
    string IncidentId,
    string AlertName,
    string AlertFingerprint,
    DateTimeOffset AlertStartsAt,
    IReadOnlyDictionary<string, string> Scope,
    string Reason,
    DateTimeOffset RequestedAt,
    IReadOnlyDictionary<string, string> Labels);

/// <summary>The risk manager carried out (or had already carried out) an emergency stop.</summary>
/// <param name="CommandId">The <see cref="EmergencyStopRequested.CommandId"/> answered.</param>
/// <param name="AcknowledgedBy">Which risk manager instance or operator acted.</param>
/// <param name="Detail">What was stopped, free text.</param>
/// <param name="AcknowledgedAt">When.</param>
public sealed record EmergencyStopAcknowledged(Guid CommandId, string AcknowledgedBy, string? Detail, DateTimeOffset AcknowledgedAt);

/// <summary>The risk manager refused an emergency stop (e.g. scope unknown, already flat, manual override).</summary>
/// <param name="CommandId">The <see cref="EmergencyStopRequested.CommandId"/> answered.</param>
/// <param name="RejectedBy">Which risk manager instance or operator refused.</param>
/// <param name="Reason">Why, free text.</param>
/// <param name="RejectedAt">When.</param>
public sealed record EmergencyStopRejected(Guid CommandId, string RejectedBy, string Reason, DateTimeOffset RejectedAt);
