namespace B25.Alerting.Delivery;

/// <summary>A pending delivery as the dispatcher hands it to a channel notifier.</summary>
/// <param name="SendingSince">When a non-idempotent call for it started whose outcome is not known (unix ms), or null.</param>
internal sealed record PendingDelivery(long Id, string IncidentId, string Channel, string Target, string Kind, long Revision,
    string Subject, string Payload, long Attempts, long AcceptedAt, long? SendingSince = null);

/// <summary>One incident change as the channels see it when they plan their deliveries.</summary>
internal sealed record IncidentChange(
    string IncidentId,
    int Revision,
    Incidents.TransitionKind Kind,
    string Receiver,
    string GroupId,
    ChangeSummary Summary);

/// <summary>A delivery a channel wants written to the outbox for a change.</summary>
internal sealed record PlannedDelivery(string Kind, string Payload, string Subject = "");

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
    IReadOnlyList<AlertView> Alerts,
    long TruncatedAlerts = 0,
    Enrichment.IncidentEnrichment? Enrichment = null,
    IncidentHandling? Handling = null,
    IReadOnlyList<EmergencyStopView>? EmergencyStops = null);

/// <summary>
/// An emergency stop asked for one of the incident's alerts, as its message shows it: status requesting, requested,
/// dry-run, suppressed, acknowledged or rejected; <paramref name="Scope"/> what it stops; <paramref name="UnansweredPaged"/>
/// the channel was paged because the risk manager did not answer in time.
/// </summary>
internal sealed record EmergencyStopView(string CommandId, string AlertName, string Status, IReadOnlyDictionary<string, string> Scope,
    DateTimeOffset RequestedAt, DateTimeOffset? AnsweredAt, string? AnsweredBy, string? Answer, bool UnansweredPaged);

/// <summary>Who handles the incident: acknowledged (by whom, when, from where: slack, pagerduty, api) and its silence.</summary>
internal sealed record IncidentHandling(string? AcknowledgedBy, DateTimeOffset? AcknowledgedAt, string? AcknowledgedVia, string? SilenceId,
    DateTimeOffset? SilencedUntil, string? SilencedBy)
{
    public bool Acknowledged => AcknowledgedAt is not null;

    /// <summary>Silenced now: a silence that has ended is no longer shown.</summary>
    public bool SilencedAt(DateTimeOffset now) => SilenceId is not null && SilencedUntil > now;
}

internal sealed record AlertView(
    string Fingerprint,
    string StartsAt,
    string Status,
    string? EndsAt,
    IReadOnlyDictionary<string, string> Labels,
    IReadOnlyDictionary<string, string> Annotations,
    string GeneratorUrl);

/// <summary>Sent; Merged into another delivery; Retry later; Failed for good; Skipped on purpose (dry run, guard).</summary>
internal enum DeliveryOutcomeKind { Sent, Merged, Retry, Failed, Skipped }

/// <param name="OutcomeUnknown">A retry whose call may have reached the vendor: keep the delivery's
/// sending mark, so the next attempt reconciles before sending again.</param>
internal sealed record DeliveryOutcome(long DeliveryId, DeliveryOutcomeKind Kind, string? Error = null, TimeSpan? RetryAfter = null,
    bool OutcomeUnknown = false);

/// <summary>
/// Records a notifier's calls as they complete, not at the end of its batch, so a crash or a storage
/// fault between two calls of a batch cannot make the first one be sent again.
/// </summary>
internal interface IDeliveryRecorder
{
    /// <summary>
    /// Right before each attempt of a call (retries and Retry-After waits included): makes sure this replica holds the
    /// target, without a break since the batch began, for the whole call (up to <paramref name="callTime"/>), renewing
    /// the claim when what is left of the lease might not cover it. Throws <see cref="Storage.ClaimLostException"/> when
    /// another replica owns the target now or held it meanwhile, so a replica that waited past its lease sends nothing:
    /// not a post or reply the new owner may already have sent, not an edit or a PagerDuty trigger behind the new owner's.
    /// </summary>
    Task EnsureOwnerAsync(TimeSpan callTime, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Durably marks the deliveries as being sent by a call that is not idempotent (a Slack post), before
    /// the call: after a crash or an unknown outcome the mark says "look before sending again".
    /// Throws <see cref="DeliveryNotRecordedException"/> when storage cannot write: then send nothing.
    /// </summary>
    Task MarkSendingAsync(IReadOnlyCollection<long> deliveryIds, CancellationToken cancellationToken);

    /// <summary>
    /// Records what one call did. Throws <see cref="DeliveryNotRecordedException"/> when storage cannot
    /// write: the result is kept in memory and recorded before the target sends anything else.
    /// </summary>
    Task RecordAsync(IReadOnlyList<DeliveryOutcome> outcomes, DeliveredMessage? newMessage, CancellationToken cancellationToken);
}

/// <summary>Storage could not record a delivery's progress: the target stops sending until it can.</summary>
internal sealed class DeliveryNotRecordedException(Exception inner) : Exception("A delivery result could not be recorded: " + inner.Message, inner);

/// <summary>For callers that record the whole batch at the end (tests, notifiers that make one call).</summary>
internal sealed class NoDeliveryRecorder : IDeliveryRecorder
{
    public static readonly NoDeliveryRecorder Instance = new();

    public Task MarkSendingAsync(IReadOnlyCollection<long> deliveryIds, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task RecordAsync(IReadOnlyList<DeliveryOutcome> outcomes, DeliveredMessage? newMessage, CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>What a notifier did with the pending deliveries of one incident at one target.</summary>
internal sealed record DeliveryBatchResult(IReadOnlyList<DeliveryOutcome> Outcomes, DeliveredMessage? NewMessage);

/// <summary>
/// One channel (Slack, PagerDuty, email, risk manager): plans the deliveries an incident change causes
/// at one of its targets, then renders and sends the pending deliveries of one incident at one target.
/// </summary>
internal interface IChannelNotifier
{
    string Channel { get; }

    /// <summary>Why the channel is off (settings missing), or null when it is on.</summary>
    string? DisabledReason => null;

    /// <summary>The channel hears about every incident, whatever the routes say (e.g. incident events).</summary>
    bool EveryIncident => false;

    /// <summary>The channel shows the incident's live context (values, logs, dashboards): the enrichment stage runs before it renders.</summary>
    bool ShowsContext => false;

    /// <summary>What is wrong with a target a route names (checked at start), or null.</summary>
    string? CheckTarget(string target) => null;

    /// <param name="change">The change.</param>
    /// <param name="target">The target.</param>
    /// <param name="isNewTarget">No delivery was planned for this target and incident before.</param>
    /// <param name="joinedHere">The alerts of this change that joined and route to this target.</param>
    IEnumerable<PlannedDelivery> Plan(IncidentChange change, Routing.DeliveryTarget target, bool isNewTarget,
        IReadOnlyList<Webhooks.AlertmanagerAlert> joinedHere);

    Task<DeliveryBatchResult> DeliverAsync(IncidentView incident, string target, IReadOnlyList<PendingDelivery> pending,
        DeliveredMessage? message, CancellationToken cancellationToken);

    /// <summary>
    /// As <see cref="DeliverAsync(IncidentView, string, IReadOnlyList{PendingDelivery}, DeliveredMessage?, CancellationToken)"/>,
    /// recording each call as it completes through <paramref name="recorder"/> (outcomes recorded there
    /// need not be returned again). Channels whose calls are idempotent need not override it.
    /// </summary>
    Task<DeliveryBatchResult> DeliverAsync(IncidentView incident, string target, IReadOnlyList<PendingDelivery> pending,
        DeliveredMessage? message, IDeliveryRecorder recorder, CancellationToken cancellationToken) =>
        DeliverAsync(incident, target, pending, message, cancellationToken);
}
