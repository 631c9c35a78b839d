using System.Text.Json;
using B25.Alerting.Incidents;
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
    private readonly TargetGuard<SlackCallResult> _guard;

    public SlackNotifier(ISlackApi api, SlackRenderer renderer, IOptions<SlackOptions> options, TimeProvider time, ILogger<SlackNotifier> logger)
    {
        _api = api;
        _renderer = renderer;
        _options = options.Value;
        _logger = logger;
        // Short retries in place; a longer outage is retried later from the outbox, so nothing is lost.
        _guard = new TargetGuard<SlackCallResult>(
            new TargetGuardSettings(_options.BurstPerChannel, TimeSpan.FromSeconds(1 / _options.MessagesPerSecondPerChannel), QuickRetries: 2,
                RetryDelay: TimeSpan.FromMilliseconds(250), DelayBackoffType.Exponential, BreakerMinimumThroughput: 6,
                BreakerSampling: TimeSpan.FromSeconds(30), BreakDuration: TimeSpan.FromSeconds(15)),
            r => r.Status == SlackCallStatus.Transient, r => r.RetryAfter, time);
    }

    public string Channel => "slack";

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

    public async Task<DeliveryBatchResult> DeliverAsync(IncidentView incident, string target, IReadOnlyList<PendingDelivery> pending,
        DeliveredMessage? message, CancellationToken cancellationToken)
    {
        var outcomes = new List<DeliveryOutcome>();
        var posts = pending.Where(d => d.Kind == "post").ToList();
        var updates = pending.Where(d => d.Kind == "update").ToList();
        var replies = pending.Where(d => d.Kind is "reply" or "note").ToList();
        DeliveredMessage? created = null;

        if (message is null)
        {
            if (posts.Count == 0)
            {
                // The message these edits belong to was never posted (its post failed for good).
                outcomes.AddRange(pending.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Failed, "no Slack message to edit: its post failed")));
                return new DeliveryBatchResult(outcomes, null);
            }
            var rendered = _renderer.RenderIncident(incident);
            var result = await CallAsync(target, ct => _api.PostMessageAsync(target, rendered.Text, rendered.Blocks, null, null, ct), cancellationToken);
            if (!result.IsOk)
                return Failure(outcomes, pending, target, result);
            created = message = new DeliveredMessage(result.Channel ?? target, result.Ts ?? "");
            outcomes.Add(new DeliveryOutcome(posts[0].Id, DeliveryOutcomeKind.Sent));
            outcomes.AddRange(posts.Skip(1).Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Merged)));
            // The new message already shows the incident as it is now.
            outcomes.AddRange(updates.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Merged)));
            updates.Clear();
        }
        else
        {
            outcomes.AddRange(posts.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Merged)));
        }

        if (updates.Count > 0)
        {
            var rendered = _renderer.RenderIncident(incident);
            var result = await CallAsync(target, ct => _api.UpdateAsync(message.Address, message.MessageId, rendered.Text, rendered.Blocks, ct), cancellationToken);
            if (!result.IsOk)
                return Failure(outcomes, updates.Concat(replies).ToList(), target, result, created);
            var latest = updates.MaxBy(d => d.Revision)!;
            outcomes.AddRange(updates.Select(d => new DeliveryOutcome(d.Id, d == latest ? DeliveryOutcomeKind.Sent : DeliveryOutcomeKind.Merged)));
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
            var result = await CallAsync(target, ct => _api.PostMessageAsync(message.Address, text, null, message.MessageId, null, ct), cancellationToken);
            if (!result.IsOk)
                return Failure(outcomes, replies, target, result, created);
            outcomes.Add(new DeliveryOutcome(replies[0].Id, DeliveryOutcomeKind.Sent));
            outcomes.AddRange(replies.Skip(1).Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Merged)));
        }

        return new DeliveryBatchResult(outcomes, created);
    }

    private DeliveryBatchResult Failure(List<DeliveryOutcome> outcomes, IReadOnlyList<PendingDelivery> failed, string target,
        SlackCallResult result, DeliveredMessage? created = null)
    {
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

    /// <summary>One Web API call under the target's rate limit, retries and circuit breaker.</summary>
    private Task<SlackCallResult> CallAsync(string target, Func<CancellationToken, Task<SlackCallResult>> call, CancellationToken cancellationToken) =>
        _guard.ExecuteAsync(target, call,
            wait => new SlackCallResult(SlackCallStatus.Transient, Error: "circuit open for this channel", RetryAfter: wait), cancellationToken);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Error, Message = "Slack refused a delivery to {Target} for good: {Error}. Not retried; later failures with the same error are counted, not logged")]
    private partial void LogPermanent(string target, string error);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "Slack delivery to {Target} failed for now ({Error}); it stays queued and is retried")]
    private partial void LogTransient(string target, string error);
}
