using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using B25.Alerting.Delivery;
using B25.Alerting.Delivery.Slack;
using B25.Alerting.Silences;
using B25.Alerting.Storage;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Incidents;

/// <summary>A human action asked for: what, on which incident, by whom, from where; <see cref="Key"/> identifies the request (a retry has the same).</summary>
internal sealed record ActionRequest(string IncidentId, string Action, string Actor, string Source, string Key, TimeSpan? Duration = null);

/// <summary>What came of an action: its audit row (null: no such incident) and a sentence for the person who asked.</summary>
internal sealed record ActionAnswer(ActionRow? Row, string Message, bool Duplicate = false)
{
    public string Result => Row?.Result ?? "not-found";
}

/// <summary>
/// Human actions on incidents: acknowledge, silence, unsilence. Each is a transition of the incident, applied in its
/// alert group's order (after the notifications journaled before it), recorded durably with the deliveries it causes
/// before anyone is answered, and idempotent: the same request twice is one action, and of two people acknowledging
/// at once the first wins. Silencing waits for Alertmanager between recording the request and applying it: the
/// request is pending meanwhile, and Alertmanager refusing leaves the incident as it was.
/// </summary>
internal sealed partial class IncidentActions(
    IIncidentActionStore store,
    IncidentProcessor processor,
    IAlertmanagerSilences silences,
    DeliverySignal signal,
    IOptions<Hosting.ServiceOptions> service,
    IOptions<RiskManager.RiskManagerOptions> riskManager,
    TimeProvider time,
    ILogger<IncidentActions> logger)
{
    public const string Acknowledge = "acknowledge";
    public const string Silence = "silence";
    public const string Unsilence = "unsilence";

    /// <summary>Someone resolved the incident in PagerDuty: shown in the thread, but only Prometheus closes an incident.</summary>
    public const string PagerDutyResolve = "resolve";

    public static readonly IReadOnlyDictionary<string, TimeSpan> SilenceDurations = new Dictionary<string, TimeSpan>
    {
        ["1h"] = TimeSpan.FromHours(1), ["4h"] = TimeSpan.FromHours(4), ["24h"] = TimeSpan.FromHours(24),
    };

    /// <summary>Longest silence the API takes.</summary>
    public static readonly TimeSpan MaxSilence = TimeSpan.FromDays(7);

    /// <summary>Marks the service's silences in Alertmanager, with the action's id: how a silence whose answer was lost is found again.</summary>
    private const string CommentMarker = "b25-action:";

    /// <summary>
    /// Records the action and does what it can at once. Acknowledge is done when this returns; silence and unsilence
    /// are pending (recorded) with <paramref name="finish"/> set to the Alertmanager call that completes them, for the
    /// caller to run now (the API) or after answering (Slack).
    /// </summary>
    public async Task<(ActionAnswer Answer, Func<CancellationToken, Task<ActionAnswer>>? Finish)> StartAsync(ActionRequest request,
        CancellationToken cancellationToken)
    {
        var groupId = await store.GroupOfAsync(request.IncidentId, cancellationToken);
        if (groupId is null) return (new ActionAnswer(null, $"No incident '{request.IncidentId}'."), null);
        var now = time.GetUtcNow();
        string? silenceId = null;
        IReadOnlyDictionary<string, string> groupLabels = new Dictionary<string, string>();
        var recorded = await processor.InGroupOrderAsync(groupId, ct => store.RecordAsync(
            new NewAction(request.IncidentId, request.Key, request.Action, request.Actor, request.Source, now.ToUnixTimeMilliseconds()),
            subject =>
            {
                silenceId = subject.SilenceId;
                groupLabels = subject.GroupLabels;
                return Decide(request, subject, now);
            }, ct), cancellationToken);
        if (recorded is not { } found) return (new ActionAnswer(null, $"No incident '{request.IncidentId}'."), null);
        var (row, duplicate) = found;
        if (!duplicate) Counted(row);
        if (!duplicate && row.Result != ActionResults.Pending) signal.Notify();
        LogAction(row.IncidentId, row.Action, row.Source, row.Result, duplicate);
        var answer = new ActionAnswer(row, Describe(row), duplicate);
        if (duplicate || row.Result != ActionResults.Pending) return (answer, null);
        return (answer, ct => FinishAsync(row, groupId, request.Duration, silenceId, groupLabels, ct));
    }

    /// <summary>Records and completes the action (the API: the caller waits for Alertmanager).</summary>
    public async Task<ActionAnswer> RunAsync(ActionRequest request, CancellationToken cancellationToken)
    {
        var (answer, finish) = await StartAsync(request, cancellationToken);
        return finish is null ? answer : await finish(cancellationToken);
    }

    private ActionDecision Decide(ActionRequest request, ActionSubject subject, DateTimeOffset now)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        if (request.Action == Acknowledge)
        {
            if (subject.Closed) return new ActionDecision(ActionResults.AlreadyResolved);
            if (subject.Acknowledged)
                return new ActionDecision(ActionResults.AlreadyAcknowledged,
                    $"{Who(subject.AcknowledgedBy!, subject.AcknowledgedVia!)} at {Clock(subject.AcknowledgedAt!.Value)}");
            var at = now;
            return new ActionDecision(ActionResults.Acknowledged, Change: HandlingChangeKind.Acknowledge, EditSlack: true,
                ThreadNote: $":eyes: *Acknowledged* by {Who(request.Actor, request.Source)} at {Clock(nowMs)} ({Via(request.Source)}).",
                // Not echoed back to PagerDuty when that is where it was acknowledged.
                PagerDutyAcknowledge: request.Source != "pagerduty",
                AcknowledgedPayload: riskManager.Value.PublishIncidentEvents
                    ? JsonSerializer.Serialize(new AcknowledgedPayload(request.Actor, request.Source, at), IncidentActionsJsonContext.Default.AcknowledgedPayload)
                    : null);
        }
        if (request.Action == PagerDutyResolve)
        {
            if (subject.Closed) return new ActionDecision(ActionResults.AlreadyResolved);
            return new ActionDecision(ActionResults.ShownOnly, "only Prometheus closes an incident",
                ThreadNote: $":information_source: Resolved in PagerDuty by {Who(request.Actor, request.Source)}; this incident stays open until Prometheus resolves its alerts.");
        }
        if (request.Action == Silence)
        {
            if (subject.Closed) return new ActionDecision(ActionResults.AlreadyResolved);
            if (subject.SilencedAt(nowMs))
                return new ActionDecision(ActionResults.AlreadySilenced, $"until {Clock(subject.SilencedUntil!.Value)} by {Who(subject.SilencedBy!, "slack")}");
            if (!silences.Enabled) return new ActionDecision(ActionResults.Failed, "silencing is off: Alertmanager:Urls is not set");
            if (subject.GroupLabels.Count == 0)
                return new ActionDecision(ActionResults.Failed, "the alert group has no labels to match (Alertmanager group_by is empty)");
            return new ActionDecision(ActionResults.Pending);
        }
        if (request.Action != Unsilence) throw new ArgumentException($"Unknown incident action '{request.Action}'.", nameof(request));
        if (subject.SilenceId is null || !subject.SilencedAt(nowMs)) return new ActionDecision(ActionResults.NotSilenced);
        return new ActionDecision(ActionResults.Pending);
    }

    /// <summary>The Alertmanager call of a pending silence or unsilence, then its result recorded in the group's order.</summary>
    private async Task<ActionAnswer> FinishAsync(ActionRow row, string groupId, TimeSpan? duration, string? currentSilence,
        IReadOnlyDictionary<string, string> groupLabels, CancellationToken cancellationToken)
    {
        ActionDecision decision;
        var now = time.GetUtcNow();
        if (row.Action == Silence)
        {
            var until = now + (duration ?? TimeSpan.FromHours(1));
            var result = await silences.CreateAsync(groupLabels, now, until, CreatedBy(row), Comment(row), cancellationToken);
            decision = result.Ok
                ? SilencedDecision(row, result.SilenceId!, until)
                : new ActionDecision(ActionResults.Failed, $"Alertmanager did not take the silence: {result.Error}");
        }
        else
        {
            var result = await silences.ExpireAsync(currentSilence!, cancellationToken);
            decision = result.Ok
                ? UnsilencedDecision(row)
                : new ActionDecision(ActionResults.Failed, $"Alertmanager did not expire the silence: {result.Error}");
        }
        return await CompleteAsync(row, groupId, _ => decision, cancellationToken);
    }

    private ActionDecision SilencedDecision(ActionRow row, string silenceId, DateTimeOffset until) =>
        new(ActionResults.Silenced, $"until {Clock(until.ToUnixTimeMilliseconds())} (silence {silenceId})", HandlingChangeKind.Silence, silenceId,
            until.ToUnixTimeMilliseconds(), EditSlack: true,
            ThreadNote: $":mute: *Silenced* until {Clock(until.ToUnixTimeMilliseconds())} by {Who(row.Actor, row.Source)} ({Via(row.Source)}); Alertmanager silence `{silenceId}`.");

    private ActionDecision UnsilencedDecision(ActionRow row) =>
        new(ActionResults.Unsilenced, Change: HandlingChangeKind.Unsilence, EditSlack: true,
            ThreadNote: $":loud_sound: *Unsilenced* by {Who(row.Actor, row.Source)} ({Via(row.Source)}): Alertmanager notifies for this group again.");

    private async Task<ActionAnswer> CompleteAsync(ActionRow row, string groupId, Func<ActionSubject, ActionDecision> decide, CancellationToken cancellationToken)
    {
        var done = await processor.InGroupOrderAsync(groupId,
            ct => store.CompleteAsync(row.Id, decide, time.GetUtcNow().ToUnixTimeMilliseconds(), ct), cancellationToken);
        if (done is null) return new ActionAnswer(null, $"No incident '{row.IncidentId}'.");
        Counted(done);
        signal.Notify();
        LogAction(done.IncidentId, done.Action, done.Source, done.Result, false);
        return new ActionAnswer(done, Describe(done));
    }

    /// <summary>
    /// Finishes an action its process did not (it stopped between recording it and hearing from Alertmanager): a silence
    /// Alertmanager holds for it is adopted, one it does not hold is recorded as failed; an unsilence is tried again.
    /// </summary>
    public async Task RecoverAsync(ActionRow row, CancellationToken cancellationToken)
    {
        var groupId = await store.GroupOfAsync(row.IncidentId, cancellationToken);
        if (groupId is null) return;
        if (row.Action == Silence)
        {
            var listed = await silences.ListAsync(cancellationToken);
            if (listed is null) return; // Alertmanager down: try again later
            var mine = listed.FirstOrDefault(s => s.Comment.Contains(Marker(row), StringComparison.Ordinal) && s.State is "active" or "pending");
            await CompleteAsync(row, groupId, _ => mine is null
                ? new ActionDecision(ActionResults.Failed, "interrupted before Alertmanager took the silence; nothing was silenced")
                : SilencedDecision(row, mine.Id, mine.EndsAt ?? time.GetUtcNow() + TimeSpan.FromHours(1)), cancellationToken);
        }
        else
        {
            await CompleteAsync(row, groupId, subject => subject.SilenceId is null
                ? UnsilencedDecision(row)
                : new ActionDecision(ActionResults.Failed, "interrupted; the silence may still be active: ask again"), cancellationToken);
        }
    }

    private string CreatedBy(ActionRow row) => row.Source == "slack" ? $"slack:{row.Actor}" : $"{row.Source}:{row.Actor}";

    private string Comment(ActionRow row)
    {
        var link = service.Value.PublicUrl is { Length: > 0 } url ? $"{url.TrimEnd('/')}/api/incidents/{row.IncidentId}" : $"incident {row.IncidentId}";
        return $"Silenced from B25.Alerting ({Via(row.Source)}): {link} [{Marker(row)}]";
    }

    private static string Marker(ActionRow row) => $"{CommentMarker}{row.Id}:{row.IncidentId}";

    /// <summary>The sentence for the person who asked (Slack mrkdwn: users as mentions).</summary>
    public static string Describe(ActionRow row)
    {
        var detail = row.Detail is { Length: > 0 } d ? " " + d : "";
        return row.Result switch
        {
            ActionResults.Acknowledged => $"Acknowledged by {Who(row.Actor, row.Source)}.",
            ActionResults.AlreadyAcknowledged => $"Already acknowledged by{detail}.",
            ActionResults.AlreadyResolved => "Already resolved: nothing to do.",
            ActionResults.Silenced => $"Silenced{detail}.",
            ActionResults.AlreadySilenced => $"Already silenced{detail}.",
            ActionResults.Unsilenced => "Unsilenced: Alertmanager notifies for this group again.",
            ActionResults.NotSilenced => "Not silenced: nothing to undo.",
            ActionResults.Pending => "Recorded; asking Alertmanager.",
            ActionResults.ShownOnly => "Shown in the incident's thread; only Prometheus closes an incident.",
            _ => $"Not done:{detail}",
        };
    }

    /// <summary>A Slack user as a mention (ids only: nothing else becomes a control sequence); anyone else by name, escaped.</summary>
    public static string Who(string actor, string source) =>
        source == "slack" && SlackUserId().IsMatch(actor) ? $"<@{actor}>" : SlackText.Escape(actor);

    private static string Via(string source) => source switch { "slack" => "Slack", "pagerduty" => "PagerDuty", "api" => "API", _ => source };

    private static string Clock(long ms) =>
        DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

    [GeneratedRegex("^[UW][A-Z0-9]{2,30}$")]
    internal static partial Regex SlackUserId();

    private static void Counted(ActionRow row) => ActionMetrics.Actions.WithLabels(row.Action, row.Source, row.Result).Inc();

    [LoggerMessage(EventId = 6401, Level = LogLevel.Information, Message = "Incident {IncidentId}: {Action} from {Source}: {Result} (repeat request: {Duplicate})")]
    private partial void LogAction(string incidentId, string action, string source, string result, bool duplicate);
}

/// <summary>What IncidentAcknowledged is published from.</summary>
internal sealed record AcknowledgedPayload(string By, string Source, DateTimeOffset At);

[System.Text.Json.Serialization.JsonSerializable(typeof(AcknowledgedPayload))]
internal sealed partial class IncidentActionsJsonContext : System.Text.Json.Serialization.JsonSerializerContext;

internal static class ActionMetrics
{
    public static readonly global::Prometheus.Counter Actions = global::Prometheus.Metrics.CreateCounter(
        "b25_alerting_human_actions_total",
        "Human actions on incidents recorded (a repeated request is not counted again), by action (acknowledge, silence, unsilence), source (slack, pagerduty, api) and result (acknowledged, already-acknowledged, already-resolved, silenced, failed, ...; pending while Alertmanager is asked).",
        new global::Prometheus.CounterConfiguration { LabelNames = ["action", "source", "result"] });
}
