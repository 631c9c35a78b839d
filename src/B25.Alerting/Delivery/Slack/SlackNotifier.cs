using System.Text.Json;
using B25.Alerting.Incidents;
using B25.Alerting.Observability;
using B25.Alerting.Routing;
using B25.Alerting.Webhooks;
using Microsoft.Extensions.Options;
using Polly;

namespace B25.Alerting.Delivery.Slack;

/// <summary>
/// Slack channel: one message per incident and target, edited in place (chat.update) as the incident
/// changes, with a thread reply saying what changed. Pending edits of one message are merged into one
/// call, and so are pending replies, so a storm never floods a channel.
/// </summary>
internal sealed partial class SlackNotifier : IChannelNotifier
{
    private readonly ISlackApi _api;
    private readonly SlackRenderer _renderer;
    private readonly SlackOptions _options;
    private readonly ILogger<SlackNotifier> _logger;
    private readonly TimeProvider _time;
    private readonly TargetGuard<SlackCallResult> _guard;
    // Channel ids learned from Slack's answers (or looked up), by target as routes name it.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _channelIds = new();

    public SlackNotifier(ISlackApi api, SlackRenderer renderer, IOptions<SlackOptions> options, TimeProvider time, ILogger<SlackNotifier> logger)
    {
        _api = api;
        _renderer = renderer;
        _options = options.Value;
        _logger = logger;
        _time = time;
        // Short retries in place; a longer outage is retried later from the outbox, so nothing is lost.
        _guard = new TargetGuard<SlackCallResult>(
            new TargetGuardSettings(_options.BurstPerChannel, TimeSpan.FromSeconds(1 / _options.MessagesPerSecondPerChannel), QuickRetries: 2,
                RetryDelay: TimeSpan.FromMilliseconds(250), DelayBackoffType.Exponential, BreakerMinimumThroughput: 6,
                BreakerSampling: TimeSpan.FromSeconds(30), BreakDuration: TimeSpan.FromSeconds(15)),
            r => r.Status == SlackCallStatus.Transient, r => r.RetryAfter, time);
    }

    public string Channel => "slack";

    public bool ShowsContext => true;

    public IEnumerable<PlannedDelivery> Plan(IncidentChange change, DeliveryTarget target, bool isNewTarget, IReadOnlyList<AlertmanagerAlert> joinedHere)
    {
        var payload = JsonSerializer.Serialize(change.Summary, DeliveryJsonContext.Default.ChangeSummary);
        if (isNewTarget)
        {
            yield return new PlannedDelivery("post", payload);
        }
        else if (change.Kind is TransitionKind.Change or TransitionKind.Close)
        {
            yield return new PlannedDelivery("update", payload);
            yield return new PlannedDelivery("reply", payload);
        }
    }

    public Task<DeliveryBatchResult> DeliverAsync(IncidentView incident, string target, IReadOnlyList<PendingDelivery> pending,
        DeliveredMessage? message, CancellationToken cancellationToken) =>
        DeliverAsync(incident, target, pending, message, NoDeliveryRecorder.Instance, cancellationToken);

    public async Task<DeliveryBatchResult> DeliverAsync(IncidentView incident, string target, IReadOnlyList<PendingDelivery> pending,
        DeliveredMessage? message, IDeliveryRecorder recorder, CancellationToken cancellationToken)
    {
        // Outcomes not yet recorded; each call's outcomes are recorded as soon as it completes.
        var outcomes = new List<DeliveryOutcome>();
        var posts = pending.Where(d => d.Kind == "post").ToList();
        var updates = pending.Where(d => d.Kind == "update").ToList();
        var replies = pending.Where(d => d.Kind is "reply" or "note").OrderBy(d => d.Id).ToList();

        if (message is null)
        {
            if (posts.Count == 0)
            {
                // The message these edits belong to was never posted (its post failed for good).
                outcomes.AddRange(pending.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Failed, "no Slack message to edit: its post failed")));
                return new DeliveryBatchResult(outcomes, null);
            }

            if (posts.Any(p => p.SendingSince is not null))
            {
                // An earlier post's outcome is unknown (timeout, lost connection, crash): look for it before posting again.
                if (InFlight(posts.Where(p => p.SendingSince is not null)))
                    return Wait(outcomes, pending, target, incident.Id);
                var search = await FindPostAsync(incident, target, posts.Where(p => p.SendingSince is not null).Min(p => p.SendingSince!.Value),
                    cancellationToken);
                if (search.Status == SlackCallStatus.Transient)
                    return Unresolved(outcomes, pending, target, search.Error, search.RetryAfter);
                if (search.Found is { } found)
                {
                    LogAdopted(target, incident.Id, found.MessageId);
                    message = found;
                    // The edits still apply: the adopted message shows the incident as it was when it was posted.
                    await recorder.RecordAsync(Sent(posts), found, cancellationToken);
                }
            }

            if (message is null)
            {
                await recorder.MarkSendingAsync(posts.Select(p => p.Id).ToList(), cancellationToken);
                var metadata = new SlackMessageMetadata(PostEvent, PostPayload(incident.Id, target));
                // A post Slack refused for its form was not posted: the minimal one goes out under the same
                // mark and metadata, so an unknown outcome of either is found the same way.
                var result = await SendIncidentAsync(incident, target, "post", recorder,
                    (rendered, ct) => _api.PostMessageAsync(target, rendered.Text, rendered.Blocks, null, metadata, ct), cancellationToken);
                Ended(posts, result);
                if (!result.IsOk)
                    return Failure(outcomes, pending, target, result);
                if (result.Channel is { } channelId) _channelIds[target] = channelId;
                message = new DeliveredMessage(result.Channel ?? target, result.Ts ?? "");
                // The new message already shows the incident as it is now.
                var done = Sent(posts).Concat(updates.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Merged))).ToList();
                updates.Clear();
                await recorder.RecordAsync(done, message, cancellationToken);
            }
        }
        else
        {
            outcomes.AddRange(posts.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Merged)));
        }

        if (updates.Count > 0)
        {
            var result = await SendIncidentAsync(incident, target, "update", recorder,
                (rendered, ct) => _api.UpdateAsync(message.Address, message.MessageId, rendered.Text, rendered.Blocks, ct), cancellationToken);
            if (!result.IsOk)
                return Failure(outcomes, updates.Concat(replies).ToList(), target, result);
            var latest = updates.MaxBy(d => d.Revision)!;
            outcomes.AddRange(updates.Select(d => new DeliveryOutcome(d.Id, d == latest ? DeliveryOutcomeKind.Sent : DeliveryOutcomeKind.Merged)));
            await recorder.RecordAsync(outcomes.ToList(), null, cancellationToken);
            outcomes.Clear();
        }

        if (replies.Count > 0)
        {
            var unsure = replies.Where(d => d.SendingSince is not null).ToList();
            if (unsure.Count > 0 && InFlight(unsure))
                return Wait(outcomes, replies, target, incident.Id);
            if (unsure.Count > 0)
            {
                // A reply's outcome is unknown: it was posted with the id of the first reply it carries.
                var search = await SearchAsync(target, message.Address, message.MessageId, unsure.Min(d => d.SendingSince!.Value), ReplyEvent,
                    ReplyPayload(incident.Id, replies[0].Id), cancellationToken);
                if (search.Status == SlackCallStatus.Transient)
                    return Unresolved(outcomes, replies, target, search.Error, search.RetryAfter);
                if (search.Found is { } found)
                {
                    LogAdopted(target, incident.Id, found.MessageId);
                    await recorder.RecordAsync(Sent(unsure), null, cancellationToken);
                    replies = replies.Except(unsure).ToList();
                }
            }
        }

        if (replies.Count > 0)
        {
            var changes = replies.Where(d => d.Kind == "reply").OrderBy(d => d.Revision)
                .Select(d => JsonSerializer.Deserialize(d.Payload, DeliveryJsonContext.Default.ChangeSummary)!)
                .ToList();
            var notes = replies.Where(d => d.Kind == "note").OrderBy(d => d.Id)
                .Select(d => JsonSerializer.Deserialize(d.Payload, DeliveryJsonContext.Default.SlackNote)!.Text);
            var parts = new List<string>();
            if (changes.Count > 0) parts.Add(_renderer.RenderChange(incident, changes));
            parts.AddRange(notes);
            var text = SlackText.Truncate(string.Join("\n", parts), SlackRenderer.MaxSectionText);
            await recorder.MarkSendingAsync(replies.Select(d => d.Id).ToList(), cancellationToken);
            var metadata = new SlackMessageMetadata(ReplyEvent, ReplyPayload(incident.Id, replies[0].Id));
            var result = await CallAsync(target, recorder, ct => _api.PostMessageAsync(message.Address, text, null, message.MessageId, metadata, ct),
                cancellationToken);
            Ended(replies, result);
            if (!result.IsOk)
                return Failure(outcomes, replies, target, result);
            outcomes.AddRange(Sent(replies));
        }

        return new DeliveryBatchResult(outcomes, null);
    }

    /// <summary>
    /// Sends the incident's message (a post or an edit): the rich one from the templates; the minimal one
    /// (<see cref="SlackFallbackMessage"/>) when Slack refuses the rich one for its form or the templates
    /// cannot render it, so a page is never lost to formatting. Counted in b25_alerting_slack_fallback_total.
    /// </summary>
    private async Task<SlackCallResult> SendIncidentAsync(IncidentView incident, string target, string operation, IDeliveryRecorder recorder,
        Func<SlackMessage, CancellationToken, Task<SlackCallResult>> send, CancellationToken cancellationToken)
    {
        SlackMessage? rich = null;
        try
        {
            rich = _renderer.RenderIncident(incident);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogRenderFailed(ex, target, incident.Id);
        }
        string reason;
        if (rich is not null)
        {
            var result = await CallAsync(target, recorder, ct => send(rich, ct), cancellationToken);
            if (!result.RefusedForm) return result;
            reason = result.Error!;
        }
        else
        {
            reason = "render_error";
        }
        if (MetricsScope.Counts) Fallbacks.WithLabels(operation).Inc();
        LogFallback(target, incident.Id, operation, reason);
        var minimal = SlackFallbackMessage.Render(Presentation.ControlCharacters.Escape(incident), refusedBySlack: rich is not null);
        return await CallAsync(target, recorder, ct => send(minimal, ct), cancellationToken);
    }

    private static readonly global::Prometheus.Counter Fallbacks = CreateFallbacks();

    private static global::Prometheus.Counter CreateFallbacks()
    {
        var counter = global::Prometheus.Metrics.CreateCounter("b25_alerting_slack_fallback_total",
            "Slack incident messages sent in their minimal form because Slack refused the rich one for its form (msg_blocks_too_long, invalid_blocks, ...) or the templates could not render it, by operation (post, update). The reason is logged (event 3009).",
            new global::Prometheus.CounterConfiguration { LabelNames = ["operation"] });
        // Born at 0, so increase() sees the first one.
        counter.WithLabels("post");
        counter.WithLabels("update");
        return counter;
    }

    /// <summary>Message metadata event types: what the service looks for in a channel's history after an unknown outcome.</summary>
    internal const string PostEvent = "b25_alerting_incident";
    internal const string ReplyEvent = "b25_alerting_reply";

    /// <summary>How far before the first unknown attempt the history is searched (clock skew with Slack).</summary>
    private static readonly TimeSpan SearchMargin = TimeSpan.FromMinutes(1);

    internal static Dictionary<string, string> PostPayload(string incidentId, string target) =>
        new() { ["incident_id"] = incidentId, ["target"] = target };

    internal static Dictionary<string, string> ReplyPayload(string incidentId, long firstDeliveryId) =>
        new() { ["incident_id"] = incidentId, ["first_delivery"] = firstDeliveryId.ToString(System.Globalization.CultureInfo.InvariantCulture) };

    private static List<DeliveryOutcome> Sent(IReadOnlyList<PendingDelivery> deliveries) =>
        deliveries.Select((d, i) => new DeliveryOutcome(d.Id, i == 0 ? DeliveryOutcomeKind.Sent : DeliveryOutcomeKind.Merged)).ToList();

    private sealed record PostSearch(SlackCallStatus Status, DeliveredMessage? Found = null, string? Error = null, TimeSpan? RetryAfter = null);

    /// <summary>
    /// Looks for the incident's top-level message in the channel's history by its metadata. Ok with
    /// Found null: not there (or the service may not search: then it posts again, as it did before it
    /// could reconcile, and says so once).
    /// </summary>
    private async Task<PostSearch> FindPostAsync(IncidentView incident, string target, long sinceMs, CancellationToken cancellationToken)
    {
        if (!_channelIds.TryGetValue(target, out var channelId))
        {
            var resolved = await _api.ResolveChannelAsync(target, cancellationToken);
            switch (resolved.Status)
            {
                case SlackCallStatus.Ok when resolved.Id is not null:
                    channelId = _channelIds[target] = resolved.Id;
                    break;
                case SlackCallStatus.Ok:
                    return new PostSearch(SlackCallStatus.Ok); // no such channel: the post itself will fail for good
                case SlackCallStatus.Permanent:
                    ReportCannotSearch(target, resolved.Error);
                    return new PostSearch(SlackCallStatus.Ok);
                default:
                    return new PostSearch(SlackCallStatus.Transient, Error: $"looking up the channel: {resolved.Error}", RetryAfter: resolved.RetryAfter);
            }
        }
        return await SearchAsync(target, channelId, null, sinceMs, PostEvent, PostPayload(incident.Id, target), cancellationToken);
    }

    /// <summary>
    /// Looks for a message of the service by its metadata in a channel (or a thread). A search Slack
    /// refuses for good (missing scope) is reported once and answers "not there".
    /// </summary>
    private async Task<PostSearch> SearchAsync(string target, string channelId, string? threadTs, long sinceMs, string eventType,
        Dictionary<string, string> payload, CancellationToken cancellationToken)
    {
        var search = await _api.FindMessageAsync(channelId, threadTs, DateTimeOffset.FromUnixTimeMilliseconds(sinceMs) - SearchMargin, eventType,
            payload, cancellationToken);
        switch (search.Status)
        {
            case SlackCallStatus.Ok:
                return new PostSearch(SlackCallStatus.Ok, search.Ts is null ? null : new DeliveredMessage(channelId, search.Ts));
            case SlackCallStatus.Permanent:
                ReportCannotSearch(target, search.Error);
                return new PostSearch(SlackCallStatus.Ok);
            default:
                return new PostSearch(SlackCallStatus.Transient, Error: $"searching the channel history: {search.Error}", RetryAfter: search.RetryAfter);
        }
    }

    private void ReportCannotSearch(string target, string? error)
    {
        if (_guard.FirstReport(target, "history:" + error))
            LogCannotSearch(target, error ?? "unknown");
    }

    /// <summary>
    /// A call marked less than a request timeout ago may still be on its way (sent by another replica
    /// whose claim expired, or by a process that died a moment ago): its message may not be in the
    /// history yet, and looking now could post it twice. Look once it can no longer be in flight.
    /// </summary>
    private bool InFlight(IEnumerable<PendingDelivery> unsure) =>
        unsure.Any(d => !_ended.ContainsKey(d.Id)
                        && _time.GetUtcNow() - DateTimeOffset.FromUnixTimeMilliseconds(d.SendingSince!.Value) < _options.RequestTimeout);

    // Deliveries whose last call this process saw end without an answer it could use (a timeout, a 5xx):
    // that call is over, so there is nothing in flight to wait for before looking.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, byte> _ended = new();

    private void Ended(IEnumerable<PendingDelivery> deliveries, SlackCallResult result)
    {
        if (result.IsOk) return;
        if (_ended.Count > 10_000) _ended.Clear(); // bounded: forgetting only means waiting a request timeout
        foreach (var d in deliveries) _ended[d.Id] = 0;
    }

    private DeliveryBatchResult Wait(List<DeliveryOutcome> outcomes, IReadOnlyList<PendingDelivery> waiting, string target, string incidentId)
    {
        LogInFlight(target, incidentId, _options.RequestTimeout);
        // No Retry-After: that would hold the whole channel; the outbox's backoff (2 s, 4 s, ...) waits for this incident only.
        outcomes.AddRange(waiting.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Retry, "an earlier call may still be in flight",
            OutcomeUnknown: true)));
        return new DeliveryBatchResult(outcomes, null);
    }

    /// <summary>Could not find out whether an earlier call went through: try again later, keeping the mark.</summary>
    private DeliveryBatchResult Unresolved(List<DeliveryOutcome> outcomes, IReadOnlyList<PendingDelivery> waiting, string target, string? error,
        TimeSpan? retryAfter)
    {
        LogTransient(target, error ?? "unknown");
        outcomes.AddRange(waiting.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Retry, error, retryAfter, OutcomeUnknown: true)));
        return new DeliveryBatchResult(outcomes, null);
    }

    private DeliveryBatchResult Failure(List<DeliveryOutcome> outcomes, IReadOnlyList<PendingDelivery> failed, string target,
        SlackCallResult result, DeliveredMessage? created = null)
    {
        if (result.Status == SlackCallStatus.Unknown)
        {
            // It may have reached Slack: never repeated blindly. The next attempt looks for it first, after
            // about as long as Slack may still take to finish it.
            LogUnknown(target, result.Error ?? "unknown");
            // After a timeout Slack may still be working on the call: give it as long as a call may take.
            var wait = result.RetryAfter ?? (result.Error?.Contains("timeout", StringComparison.OrdinalIgnoreCase) == true ? _options.RequestTimeout : null);
            outcomes.AddRange(failed.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Retry, result.Error, wait, OutcomeUnknown: true)));
            return new DeliveryBatchResult(outcomes, created);
        }
        if (result.Status == SlackCallStatus.Permanent)
        {
            if (_guard.FirstReport(target, result.Error ?? ""))
                LogPermanent(target, result.Error ?? "unknown");
            outcomes.AddRange(failed.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Failed, result.Error)));
        }
        else
        {
            LogTransient(target, result.Error ?? "unknown");
            outcomes.AddRange(failed.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Retry, result.Error, result.RetryAfter)));
        }
        return new DeliveryBatchResult(outcomes, created);
    }

    /// <summary>
    /// One Web API call under the target's rate limit, retries and circuit breaker. Each attempt first makes sure this
    /// replica still owns the channel for the whole call: token and Retry-After waits and quick retries can outlast the
    /// lease, and a replica that lost the channel must not post what the new owner may have posted already.
    /// </summary>
    private Task<SlackCallResult> CallAsync(string target, IDeliveryRecorder recorder, Func<CancellationToken, Task<SlackCallResult>> call,
        CancellationToken cancellationToken) =>
        _guard.ExecuteAsync(target, async ct =>
            {
                await recorder.EnsureOwnerAsync(_options.RequestTimeout, ct);
                return await call(ct);
            },
            wait => new SlackCallResult(SlackCallStatus.Transient, Error: "held back: Retry-After or circuit open for this channel", RetryAfter: wait), cancellationToken);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "Slack call to {Target} has an unknown outcome ({Error}); it is not repeated before the channel history is checked")]
    private partial void LogUnknown(string target, string error);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "Slack already holds the message for incident {IncidentId} in {Target} (ts {Ts}) from an attempt whose answer was lost: adopted, not posted again")]
    private partial void LogAdopted(string target, string incidentId, string ts);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Error, Message = "Cannot read the history of Slack channel {Target} ({Error}): after an unknown outcome the message is posted again and may show twice. Grant the bot channels:history, groups:history, channels:read and groups:read, and invite it to the channel")]
    private partial void LogCannotSearch(string target, string error);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Error, Message = "Slack refused a delivery to {Target} for good: {Error}. Not retried; later failures with the same error are counted, not logged")]
    private partial void LogPermanent(string target, string error);

    [LoggerMessage(EventId = 3008, Level = LogLevel.Information, Message = "Slack {Target}, incident {IncidentId}: an earlier call started less than {RequestTimeout} ago and its outcome is unknown; waiting until it cannot be in flight before looking for it")]
    private partial void LogInFlight(string target, string incidentId, TimeSpan requestTimeout);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "Slack delivery to {Target} failed for now ({Error}); it stays queued and is retried")]
    private partial void LogTransient(string target, string error);

    [LoggerMessage(EventId = 3009, Level = LogLevel.Warning, Message = "Slack {Target}, incident {IncidentId}: the full message was not sent ({Reason}); the {Operation} goes out as the minimal message")]
    private partial void LogFallback(string target, string incidentId, string operation, string reason);

    [LoggerMessage(EventId = 3010, Level = LogLevel.Error, Message = "Slack {Target}, incident {IncidentId}: the Slack templates could not render the incident; the minimal message is sent instead. Fix templates/slack")]
    private partial void LogRenderFailed(Exception exception, string target, string incidentId);
}
