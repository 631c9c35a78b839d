using System.Text.Json;
using B25.Alerting.Incidents;
using B25.Alerting.Routing;
using B25.Alerting.Storage;
using B25.Alerting.Webhooks;
using Dapper;
using Microsoft.Extensions.Options;
using Polly;

namespace B25.Alerting.Delivery.PagerDuty;

/// <summary>
/// PagerDuty channel (Events API v2): one PagerDuty alert per incident and routing key, on a dedup_key
/// derived from the alert group. Opening and every change send a trigger (PagerDuty appends it to the
/// alert), closing sends a resolve. Pending triggers of one incident are merged into one that carries
/// the incident as it is now, so a storm never floods a service.
/// </summary>
internal sealed partial class PagerDutyNotifier : IChannelNotifier
{
    public const string Trigger = "trigger";
    public const string Acknowledge = "acknowledge";
    public const string Resolve = "resolve";

    private readonly IPagerDutyEventsApi _api;
    private readonly PagerDutyOptions _options;
    private readonly Dictionary<string, string> _keys;
    private readonly IIncidentReadModel _incidents;
    private readonly ILogger<PagerDutyNotifier> _logger;
    private readonly TargetGuard<PagerDutyCallResult> _guard;

    private readonly Presentation.IncidentPresenter? _presenter;

    public PagerDutyNotifier(IPagerDutyEventsApi api, IOptions<PagerDutyOptions> options, IIncidentReadModel incidents, TimeProvider time,
        ILogger<PagerDutyNotifier> logger, Presentation.IncidentPresenter? presenter = null)
    {
        _presenter = presenter;
        _api = api;
        _options = options.Value;
        _keys = _options.ConfiguredKeys();
        _incidents = incidents;
        _logger = logger;
        // One quick retry in place for a blip; anything longer waits in the outbox (RetryDelay).
        _guard = new TargetGuard<PagerDutyCallResult>(
            new TargetGuardSettings(_options.Burst, TimeSpan.FromMinutes(1.0 / _options.EventsPerMinute), QuickRetries: 1,
                RetryDelay: TimeSpan.FromSeconds(1), DelayBackoffType.Constant, BreakerMinimumThroughput: 4,
                BreakerSampling: TimeSpan.FromSeconds(60), BreakDuration: TimeSpan.FromSeconds(30)),
            r => r.Status == PagerDutyCallStatus.Transient, r => r.RetryAfter, time, StringComparer.OrdinalIgnoreCase);
    }

    public string Channel => "pagerduty";

    public bool ShowsContext => true;

    public string? DisabledReason => _keys.Count == 0 ? "no routing key configured: set PagerDuty:RoutingKey or PagerDuty:RoutingKeys:<name>" : null;

    public string? CheckTarget(string target) => _keys.ContainsKey(target)
        ? null
        : string.Equals(target, "default", StringComparison.OrdinalIgnoreCase)
            ? "PagerDuty routing key 'default' is named but PagerDuty:RoutingKey is empty."
            : $"PagerDuty routing key '{target}' is named but PagerDuty:RoutingKeys:{target} is not configured.";

    public IEnumerable<PlannedDelivery> Plan(IncidentChange change, DeliveryTarget target, bool isNewTarget, IReadOnlyList<AlertmanagerAlert> joinedHere)
    {
        // The payload is only a record of the change: the event is built from the incident when it is sent.
        var payload = JsonSerializer.Serialize(change.Summary, DeliveryJsonContext.Default.ChangeSummary);
        if (isNewTarget || change.Kind == TransitionKind.Change)
            yield return new PlannedDelivery(Trigger, payload);
        if (change.Kind == TransitionKind.Close)
            yield return new PlannedDelivery(Resolve, payload);
    }

    public Task<DeliveryBatchResult> DeliverAsync(IncidentView incident, string target, IReadOnlyList<PendingDelivery> pending,
        DeliveredMessage? message, CancellationToken cancellationToken) =>
        DeliverAsync(incident, target, pending, message, NoDeliveryRecorder.Instance, cancellationToken);

    public async Task<DeliveryBatchResult> DeliverAsync(IncidentView incident, string target, IReadOnlyList<PendingDelivery> pending,
        DeliveredMessage? message, IDeliveryRecorder recorder, CancellationToken cancellationToken)
    {
        var outcomes = new List<DeliveryOutcome>();
        var unknown = pending.Where(d => d.Kind is not (Trigger or Acknowledge or Resolve)).ToList();
        outcomes.AddRange(unknown.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Failed, $"unknown PagerDuty delivery kind '{d.Kind}'")));
        var triggers = pending.Where(d => d.Kind == Trigger).ToList();
        var acknowledges = pending.Where(d => d.Kind == Acknowledge).ToList();
        var resolves = pending.Where(d => d.Kind == Resolve).ToList();
        var events = triggers.Concat(acknowledges).Concat(resolves).ToList();
        if (events.Count == 0) return new DeliveryBatchResult(outcomes, null);

        if (!_keys.TryGetValue(target, out var routingKey))
        {
            // The key was removed from the settings after these were queued: nowhere to send them.
            outcomes.AddRange(events.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Failed, $"routing key '{target}' is not configured")));
            return new DeliveryBatchResult(outcomes, null);
        }
        var dedupKey = PagerDutyEvents.DedupKey(incident.Receiver, incident.GroupKey);

        if (await SupersededAsync(incident, target, cancellationToken))
        {
            // A later incident of the same group already paged on the same dedup_key: sending this one's
            // trigger or resolve now would edit or close that newer PagerDuty alert.
            LogSuperseded(target, incident.Id);
            outcomes.AddRange(events.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Merged, "superseded: a later incident of this group already paged")));
            return new DeliveryBatchResult(outcomes, null);
        }

        DeliveredMessage? created = null;
        // A trigger goes out even when a resolve is pending behind it (PagerDuty was down the whole
        // incident): the on-call engineer still learns what happened, and the resolve closes it.
        if (triggers.Count > 0)
        {
            var view = await WithMoreAlertsAsync(incident, cancellationToken);
            // The first line and links as the other channels show them (with the context found for this revision).
            var presentation = _presenter?.Present(view with { Enrichment = incident.Enrichment });
            var body = PagerDutyEvents.Trigger(view, routingKey, dedupKey, _options, presentation: presentation);
            var result = await CallAsync(target, body, recorder, cancellationToken);
            if (!result.IsOk)
                return Failure(outcomes, events, target, result);
            var latest = triggers.MaxBy(d => (d.Revision, d.Id))!;
            outcomes.AddRange(triggers.Select(d => new DeliveryOutcome(d.Id, d == latest ? DeliveryOutcomeKind.Sent : DeliveryOutcomeKind.Merged)));
            if (message is null) created = new DeliveredMessage(target, dedupKey);
            // Recorded before the resolve goes out: after a crash between the two, the trigger must not be sent
            // again behind its resolve (PagerDuty opens a new incident for a trigger after a resolve: a second page).
            if (resolves.Count > 0) await recorder.RecordAsync(outcomes.ToList(), created, cancellationToken);
        }

        if (resolves.Count > 0)
        {
            // Acknowledging what is being resolved is moot: those are folded into the resolve.
            var result = await CallAsync(target, PagerDutyEvents.Resolve(routingKey, dedupKey), recorder, cancellationToken);
            if (!result.IsOk)
                return Failure(outcomes, resolves.Concat(acknowledges).ToList(), target, result, created);
            outcomes.Add(new DeliveryOutcome(resolves[0].Id, DeliveryOutcomeKind.Sent));
            outcomes.AddRange(resolves.Skip(1).Concat(acknowledges).Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Merged)));
        }
        else if (acknowledges.Count > 0)
        {
            var result = await CallAsync(target, PagerDutyEvents.Acknowledge(routingKey, dedupKey), recorder, cancellationToken);
            if (!result.IsOk)
                return Failure(outcomes, acknowledges, target, result, created);
            outcomes.Add(new DeliveryOutcome(acknowledges[0].Id, DeliveryOutcomeKind.Sent));
            outcomes.AddRange(acknowledges.Skip(1).Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Merged)));
        }
        return new DeliveryBatchResult(outcomes, created);
    }

    /// <summary>True when a later incident of the same alert group already sent a trigger to this routing key.</summary>
    private Task<bool> SupersededAsync(IncidentView incident, string target, CancellationToken cancellationToken) =>
        _incidents.SupersededAtAsync(incident, Channel, target, cancellationToken);

    /// <summary>The dispatcher loads a few alerts; custom_details can carry more (the builder caps the size).</summary>
    private async Task<IncidentView> WithMoreAlertsAsync(IncidentView incident, CancellationToken cancellationToken)
    {
        if (incident.Alerts.Count >= incident.FiringCount + incident.ResolvedCount || incident.Alerts.Count >= _options.MaxAlerts)
            return incident;
        return await _incidents.LoadAsync(incident.Id, _options.MaxAlerts, cancellationToken) ?? incident;
    }

    private DeliveryBatchResult Failure(List<DeliveryOutcome> outcomes, IReadOnlyList<PendingDelivery> failed, string target,
        PagerDutyCallResult result, DeliveredMessage? created = null)
    {
        var error = result.Error ?? "unknown";
        if (result.Status == PagerDutyCallStatus.Permanent)
        {
            if (_guard.FirstReport(target, error))
                LogPermanent(target, error);
            outcomes.AddRange(failed.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Failed, error)));
        }
        else
        {
            LogTransient(target, error);
            // Spaced tens of seconds apart: PagerDuty asks clients to back off, and the outbox keeps the page meanwhile.
            var retryAfter = result.RetryAfter is { } ra && ra > TimeSpan.Zero ? ra : _options.RetryDelay;
            outcomes.AddRange(failed.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Retry, error, retryAfter)));
        }
        return new DeliveryBatchResult(outcomes, created);
    }

    /// <summary>
    /// One event under the routing key's budget, short retries and circuit breaker. Each attempt first renews the
    /// claim on the routing key: retries and Retry-After waits can outlast the lease, and a replica that lost the
    /// key must not send a trigger behind the new owner's resolve.
    /// </summary>
    private Task<PagerDutyCallResult> CallAsync(string target, string body, IDeliveryRecorder recorder, CancellationToken cancellationToken) =>
        _guard.ExecuteAsync(target, async ct =>
            {
                await recorder.EnsureOwnerAsync(_options.RequestTimeout, ct);
                return await _api.SendAsync(body, ct);
            },
            wait => new PagerDutyCallResult(PagerDutyCallStatus.Transient, "held back: Retry-After or circuit open for this routing key", wait), cancellationToken);

    [LoggerMessage(EventId = 3301, Level = LogLevel.Error, Message = "PagerDuty refused an event for routing key {Target} for good: {Error}. Not retried; later failures with the same error are counted, not logged")]
    private partial void LogPermanent(string target, string error);

    [LoggerMessage(EventId = 3302, Level = LogLevel.Warning, Message = "PagerDuty event for routing key {Target} failed for now ({Error}); it stays queued and is retried")]
    private partial void LogTransient(string target, string error);

    [LoggerMessage(EventId = 3303, Level = LogLevel.Information, Message = "PagerDuty events of incident {IncidentId} for routing key {Target} not sent: a later incident of the same group already paged on the same dedup_key")]
    private partial void LogSuperseded(string target, string incidentId);
}
