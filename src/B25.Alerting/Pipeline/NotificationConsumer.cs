using B25.Alerting.Incidents;
using MassTransit;

namespace B25.Alerting.Pipeline;

/// <summary>Applies a journaled notification to its incident. Idempotent: a replay finds it processed.</summary>
internal sealed class NotificationConsumer(IncidentProcessor processor) : IConsumer<NotificationAccepted>
{
    public Task Consume(ConsumeContext<NotificationAccepted> context) =>
        processor.ProcessAsync(context.Message.NotificationId, context.CancellationToken);
}
