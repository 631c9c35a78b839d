using B25.Alerting.Delivery;
using B25.Alerting.Routing;
using B25.Alerting.Storage;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Incidents;

/// <summary>
/// Looks every few seconds for incidents nobody acknowledged and, per their route's Escalation settings, queues a thread
/// reply mentioning the on-call group, repeated until acknowledged or resolved, capped. Also pages the incident's
/// channel (@here) when the risk manager has not answered an emergency stop within RiskManager:AnswerTimeout: the stop
/// may not have happened.
/// </summary>
internal sealed partial class EscalationMonitor(
    IEscalationStore store,
    IIncidentReadModel incidents,
    Router router,
    DeliverySignal signal,
    IOptions<RiskManager.RiskManagerOptions> riskManager,
    TimeProvider time,
    ILogger<EscalationMonitor> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    private readonly List<EscalationOptions> _escalations = router.Routes.Select(r => r.Escalation).OfType<EscalationOptions>().ToList();

    /// <summary>Unacknowledged incidents read per query; every look reads them all, a page at a time.</summary>
    internal int PageSize { get; init; } = 500;

    // The escalation each open incident's route gives it, by the incident's revision (its alerts change only with a new
    // revision, the receiver never): an incident is loaded to decide it once per revision, not on every look.
    private Dictionary<string, (long Revision, EscalationOptions? Escalation)> _decided = new(StringComparer.Ordinal);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RunOnceAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                LogFailed(ex);
            }
            try
            {
                await Task.Delay(Interval, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One look: queues the reminders and pages that are due now. Returns how many it queued.</summary>
    public async Task<int> RunOnceAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var queued = 0;
        if (_escalations.Count > 0)
        {
            var earliest = _escalations.Min(e => e.After);
            var openedBefore = (now - earliest).ToUnixTimeMilliseconds();
            var maxEscalations = _escalations.Max(e => e.Max);
            // Every candidate, a page at a time: incidents that are not due (no escalation on their route, a reminder not due
            // yet, a longer delay than the earliest) must not hide the ones behind them that are.
            var decided = new Dictionary<string, (long Revision, EscalationOptions? Escalation)>(StringComparer.Ordinal);
            var due = new List<(UnacknowledgedIncident Candidate, EscalationOptions Escalation)>();
            (long OpenedAt, string Id)? after = null;
            while (true)
            {
                var page = await store.UnacknowledgedAsync(openedBefore, maxEscalations, after, PageSize, cancellationToken);
                foreach (var candidate in page)
                {
                    if (!_decided.TryGetValue(candidate.Id, out var known) || known.Revision != candidate.Revision)
                    {
                        var view = await incidents.LoadAsync(candidate.Id, 40, cancellationToken);
                        if (view is null) continue;
                        known = (candidate.Revision, router.EscalationFor(view.Receiver, view.Alerts.Where(a => a.Status == "firing").Select(a => a.Labels)));
                    }
                    decided[candidate.Id] = known;
                    if (known.Escalation is { } escalation && candidate.Escalations < escalation.Max
                        && now >= DueAt(candidate, escalation))
                        due.Add((candidate, escalation));
                }
                if (page.Count < PageSize) break;
                after = (page[^1].OpenedAt, page[^1].Id);
            }
            _decided = decided; // only the incidents still open and unacknowledged are remembered

            foreach (var (candidate, escalation) in due)
            {
                var number = candidate.Escalations + 1;
                var unacknowledged = now - DateTimeOffset.FromUnixTimeMilliseconds(candidate.OpenedAt);
                // The mention is the operator's setting (a Slack control sequence on purpose), not alert data.
                var note = $"{escalation.Mention} :rotating_light: Not acknowledged after {Minutes(unacknowledged)} " +
                           $"(reminder {number} of {escalation.Max}): acknowledge it on this message or in PagerDuty.";
                if (!await store.EscalateAsync(candidate.Id, candidate.Escalations, note, now.ToUnixTimeMilliseconds(), cancellationToken)) continue;
                queued++;
                EscalationMetrics.Escalations.Inc();
                LogEscalated(candidate.Id, number, escalation.Max);
            }
        }

        var timeout = riskManager.Value.AnswerTimeout;
        foreach (var (commandId, incidentId) in await store.UnansweredStopsAsync((now - timeout).ToUnixTimeMilliseconds(), cancellationToken))
        {
            var note = $"<!here> :warning: The risk manager has not answered emergency stop `{commandId}` within {timeout.TotalSeconds:0} s: " +
                       "the stop may not have happened. Check the risk manager and act by hand.";
            if (!await store.PageUnansweredAsync(commandId, incidentId, note, now.ToUnixTimeMilliseconds(), cancellationToken)) continue;
            queued++;
            EscalationMetrics.UnansweredStops.Inc();
            LogUnanswered(commandId, incidentId, timeout);
        }
        if (queued > 0) signal.Notify();
        return queued;
    }

    /// <summary>When the incident's next reminder is due: After its opening, then every RepeatEvery.</summary>
    private static DateTimeOffset DueAt(UnacknowledgedIncident incident, EscalationOptions escalation) =>
        DateTimeOffset.FromUnixTimeMilliseconds(incident.OpenedAt) + escalation.After + escalation.RepeatEvery * incident.Escalations;

    private static string Minutes(TimeSpan span) => span.TotalMinutes < 1 ? $"{span.TotalSeconds:0} s" : $"{Math.Floor(span.TotalMinutes):0} min";

    [LoggerMessage(EventId = 6301, Level = LogLevel.Warning, Message = "Incident {IncidentId} not acknowledged: escalation {Number} of {Max} queued")]
    private partial void LogEscalated(string incidentId, long number, int max);

    [LoggerMessage(EventId = 6302, Level = LogLevel.Error, Message = "Emergency stop {CommandId} (incident {IncidentId}) has no answer from the risk manager after {Timeout}: paging the incident's channel")]
    private partial void LogUnanswered(string commandId, string incidentId, TimeSpan timeout);

    [LoggerMessage(EventId = 6303, Level = LogLevel.Error, Message = "The escalation look failed; it runs again shortly")]
    private partial void LogFailed(Exception ex);
}

internal static class EscalationMetrics
{
    public static readonly global::Prometheus.Counter Escalations = global::Prometheus.Metrics.CreateCounter(
        "b25_alerting_escalations_total", "Escalation reminders queued for unacknowledged incidents (route Escalation settings).");

    public static readonly global::Prometheus.Counter UnansweredStops = global::Prometheus.Metrics.CreateCounter(
        "b25_alerting_emergency_stops_unanswered_total",
        "Emergency stops the risk manager did not answer within RiskManager:AnswerTimeout, for which the incident's channel was paged.");
}
