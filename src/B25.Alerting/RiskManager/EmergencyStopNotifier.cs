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
/// for it. Guarded: at most N stops for alerts that fired within one window (then humans are paged in the
/// incident's Slack thread instead), and a dry-run switch. Every request and answer is recorded and shown in
/// the incident's Slack message (an edit); only what needs people now also goes to the thread with @here.
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
                JsonSerializer.Serialize(command.Scope, WebhookJsonContext.Default.DictionaryStringString), FiredAt(command, now)),
            now.ToUnixTimeMilliseconds(), (long)settings.Window.TotalMilliseconds, settings.MaxStopsPerWindow, settings.DryRun,
            // A dry run is routine: the incident's message shows it. The cap reached needs people now: a note that notifies.
            (status, recent) => status == "suppressed"
                ? $"<!here> :warning: Emergency stop of {SlackRenderer.StopScope(command.Scope)} NOT requested: {recent} stop(s) already for alerts that fired within {settings.Window} of this one (cap {settings.MaxStopsPerWindow}). Act by hand. (command `{id}`)"
                : null,
            cancellationToken);
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

        await stops.MarkRequestedAsync(id, incident.Id, now.ToUnixTimeMilliseconds(), cancellationToken);
        LogRequested(id, incident.Id);
        signal.Notify();
        return new DeliveryOutcome(deliveryId, DeliveryOutcomeKind.Sent);
    }

    /// <summary>
    /// When the alert fired, as the cap counts it: its startsAt, so stops released together after an outage count when
    /// their alerts fired, and a burst that fired together counts as one. A startsAt ahead of the request (a Prometheus
    /// clock running fast) counts now. A stale alert (fired long ago, arriving late) counts when it fired too: it shares
    /// the cap with whatever fired then, and is suppressed only if that window already had its stops.
    /// </summary>
    internal static long FiredAt(EmergencyStopCommand command, DateTimeOffset now) =>
        Math.Min(command.StartsAt.ToUnixTimeMilliseconds(), now.ToUnixTimeMilliseconds());

    [LoggerMessage(EventId = 5001, Level = LogLevel.Warning, Message = "Emergency stop {CommandId} requested from the risk manager for incident {IncidentId}")]
    private partial void LogRequested(string commandId, string incidentId);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Error, Message = "Emergency stop {CommandId} NOT requested: {Recent} already for alerts that fired within the window of its alert (cap {Cap}); humans paged in Slack")]
    private partial void LogSuppressed(string commandId, long recent, int cap);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Warning, Message = "Emergency stop {CommandId}: dry run, nothing published")]
    private partial void LogDryRun(string commandId);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Error, Message = "Emergency stop {CommandId} could not be published; retrying")]
    private partial void LogPublishFailed(Exception ex, string commandId);
}
