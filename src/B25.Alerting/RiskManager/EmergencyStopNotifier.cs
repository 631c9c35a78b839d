using System.Text.Json;
using B25.Alerting.Contracts;
using B25.Alerting.Delivery;
using B25.Alerting.Delivery.Slack;
using B25.Alerting.Routing;
using B25.Alerting.Storage;
using B25.Alerting.Webhooks;
using MassTransit;
using Microsoft.Extensions.Options;

namespace B25.Alerting.RiskManager;

/// <summary>
/// Asks the risk manager for an emergency stop, once per alert occurrence, for alerts whose route asks
/// for it. Guarded: at most N requests per window (then humans are paged in the incident's Slack
/// thread instead), and a dry-run switch. Every request and answer is recorded and posted to the thread.
/// </summary>
internal sealed partial class EmergencyStopNotifier(
    IEmergencyStopStore stops,
    IBus bus,
    DeliverySignal signal,
    IOptions<RiskManagerOptions> options,
    TimeProvider time,
    ILogger<EmergencyStopNotifier> logger) : IChannelNotifier
{
    public const string ChannelName = "risk-manager";

    public string Channel => ChannelName;

    public IEnumerable<PlannedDelivery> Plan(IncidentChange change, DeliveryTarget target, bool isNewTarget, IReadOnlyList<AlertmanagerAlert> joinedHere)
    {
        // The state machine lets an occurrence join once, ever; the subject (the command id) makes even a replay harmless.
        foreach (var alert in joinedHere.Where(a => a.IsFiring))
        {
            var command = EmergencyStopCommand.For(alert);
            yield return new PlannedDelivery("emergency-stop",
                JsonSerializer.Serialize(command, RiskManagerJsonContext.Default.EmergencyStopCommand), command.CommandId.ToString());
        }
    }

    public async Task<DeliveryBatchResult> DeliverAsync(IncidentView incident, string target, IReadOnlyList<PendingDelivery> pending,
        DeliveredMessage? message, CancellationToken cancellationToken)
    {
        var outcomes = new List<DeliveryOutcome>();
        foreach (var delivery in pending.OrderBy(d => d.Id))
        {
            var command = JsonSerializer.Deserialize(delivery.Payload, RiskManagerJsonContext.Default.EmergencyStopCommand)!;
            var outcome = await RequestAsync(incident, command, delivery.Id, cancellationToken);
            outcomes.Add(outcome);
            if (outcome.Kind == DeliveryOutcomeKind.Retry) break; // keep the order of commands
        }
        return new DeliveryBatchResult(outcomes, null);
    }

    private async Task<DeliveryOutcome> RequestAsync(IncidentView incident, EmergencyStopCommand command, long deliveryId, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var now = time.GetUtcNow();
        var id = command.CommandId.ToString();
        var start = await stops.BeginAsync(
            new StopRequest(id, incident.Id, command.AlertName, command.Fingerprint, AlertKey.Format(command.StartsAt),
                JsonSerializer.Serialize(command.Scope, WebhookJsonContext.Default.DictionaryStringString)),
            now.ToUnixTimeMilliseconds(), (now - settings.Window).ToUnixTimeMilliseconds(), settings.MaxStopsPerWindow, settings.DryRun,
            (status, recent) => status switch
            {
                "dry-run" => $":test_tube: DRY RUN: an emergency stop of {Scope(command)} would have been requested from the risk manager (command `{id}`). Reason: {SlackText.Escape(command.Reason)}",
                "suppressed" => $"<!here> :warning: Emergency stop of {Scope(command)} NOT requested: {recent} stop(s) already in the last {settings.Window} (cap {settings.MaxStopsPerWindow}). Act by hand. (command `{id}`)",
                _ => null,
            }, cancellationToken);
        if (!start.New && start.Status != "requesting")
            return new DeliveryOutcome(deliveryId, start.Status is "dry-run" or "suppressed" ? DeliveryOutcomeKind.Skipped : DeliveryOutcomeKind.Sent);
        if (start.New && start.Status != "requesting")
        {
            if (start.Status == "suppressed") LogSuppressed(id, start.Recent, settings.MaxStopsPerWindow);
            else LogDryRun(id);
            signal.Notify();
            return new DeliveryOutcome(deliveryId, DeliveryOutcomeKind.Skipped, start.Status);
        }

        try
        {
            await bus.Publish(new EmergencyStopRequested(command.CommandId, incident.Id, command.AlertName, command.Fingerprint,
                command.StartsAt, command.Scope, command.Reason, now, command.Labels), context =>
            {
                // On RabbitMQ an unroutable command (no risk manager has ever bound its queue) is an error, not silence.
                if (context is RabbitMqSendContext rabbit) rabbit.Mandatory = true;
            }, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogPublishFailed(ex, id);
            return new DeliveryOutcome(deliveryId, DeliveryOutcomeKind.Retry, $"publish failed: {ex.GetType().Name}", TimeSpan.FromSeconds(5));
        }

        await stops.MarkRequestedAsync(id, incident.Id,
            $":rotating_light: Emergency stop of {Scope(command)} requested from the risk manager (command `{id}`). Reason: {SlackText.Escape(command.Reason)}",
            now.ToUnixTimeMilliseconds(), cancellationToken);
        LogRequested(id, incident.Id);
        signal.Notify();
        return new DeliveryOutcome(deliveryId, DeliveryOutcomeKind.Sent);
    }

    private static string Scope(EmergencyStopCommand command) =>
        command.Scope.Count == 0
            ? "*everything* (the alert names no exchange, symbol, strategy, account or service)"
            : string.Join(", ", command.Scope.Select(kv => $"`{SlackText.Escape(kv.Key)}={SlackText.Escape(kv.Value)}`"));

    [LoggerMessage(EventId = 5001, Level = LogLevel.Warning, Message = "Emergency stop {CommandId} requested from the risk manager for incident {IncidentId}")]
    private partial void LogRequested(string commandId, string incidentId);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Error, Message = "Emergency stop {CommandId} NOT requested: {Recent} already within the window (cap {Cap}); humans paged in Slack")]
    private partial void LogSuppressed(string commandId, long recent, int cap);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Warning, Message = "Emergency stop {CommandId}: dry run, nothing published")]
    private partial void LogDryRun(string commandId);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Error, Message = "Emergency stop {CommandId} could not be published; retrying")]
    private partial void LogPublishFailed(Exception ex, string commandId);
}
