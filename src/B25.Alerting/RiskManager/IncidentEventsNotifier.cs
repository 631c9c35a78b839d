using B25.Alerting.Contracts;
using B25.Alerting.Delivery;
using B25.Alerting.Incidents;
using B25.Alerting.Routing;
using B25.Alerting.Webhooks;
using MassTransit;
using Microsoft.Extensions.Options;

namespace B25.Alerting.RiskManager;

/// <summary>Publishes IncidentOpened, IncidentAcknowledged and IncidentResolved for every incident, for the risk manager and other subscribers.</summary>
internal sealed class IncidentEventsNotifier(IBus bus, IOptions<RiskManagerOptions> options) : IChannelNotifier
{
    public string Channel => "incident-events";

    public string? DisabledReason => options.Value.PublishIncidentEvents ? null : "RiskManager:PublishIncidentEvents is false";

    public bool EveryIncident => options.Value.PublishIncidentEvents;

    public IEnumerable<PlannedDelivery> Plan(IncidentChange change, DeliveryTarget target, bool isNewTarget, IReadOnlyList<AlertmanagerAlert> joinedHere)
    {
        if (change.Kind == TransitionKind.Open) yield return new PlannedDelivery("opened", "{}");
        if (change.Kind == TransitionKind.Close) yield return new PlannedDelivery("resolved", "{}");
    }

    public async Task<DeliveryBatchResult> DeliverAsync(IncidentView incident, string target, IReadOnlyList<PendingDelivery> pending,
        DeliveredMessage? message, CancellationToken cancellationToken)
    {
        var outcomes = new List<DeliveryOutcome>();
        foreach (var delivery in pending.OrderBy(d => d.Id))
        {
            try
            {
                if (delivery.Kind == "opened")
                {
                    var title = incident.GroupLabels.TryGetValue("alertname", out var name) ? name : incident.GroupKey;
                    await bus.Publish(new IncidentOpened(incident.Id, incident.Receiver, incident.GroupKey, title,
                        incident.CommonLabels.GetValueOrDefault("severity", ""), incident.GroupLabels,
                        incident.FiringCount, incident.OpenedAt), cancellationToken);
                }
                else if (delivery.Kind == "acknowledged")
                {
                    // Queued by the acknowledge transition (IncidentActions), with who and when.
                    var ack = System.Text.Json.JsonSerializer.Deserialize(delivery.Payload, IncidentActionsJsonContext.Default.AcknowledgedPayload)!;
                    await bus.Publish(new IncidentAcknowledged(incident.Id, ack.Source == "slack" ? $"slack:{ack.By}" : $"{ack.Source}:{ack.By}", ack.At),
                        cancellationToken);
                }
                else
                {
                    await bus.Publish(new IncidentResolved(incident.Id, incident.OpenedAt, incident.ClosedAt ?? incident.OpenedAt,
                        incident.FiringCount + incident.ResolvedCount), cancellationToken);
                }
                outcomes.Add(new DeliveryOutcome(delivery.Id, DeliveryOutcomeKind.Sent));
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                outcomes.Add(new DeliveryOutcome(delivery.Id, DeliveryOutcomeKind.Retry, $"publish failed: {ex.GetType().Name}", TimeSpan.FromSeconds(5)));
                break;
            }
        }
        return new DeliveryBatchResult(outcomes, null);
    }
}
