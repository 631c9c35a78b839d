using B25.Alerting.Incidents;
using MassTransit;

namespace B25.Alerting.Pipeline;

/// <summary>Applies a journaled notification to its incident. Idempotent: a replay finds it processed.</summary>
internal sealed class NotificationConsumer(IncidentProcessor processor, NotificationPublisher publisher) : IConsumer<NotificationAccepted>
{
    public async Task Consume(ConsumeContext<NotificationAccepted> context)
    {
        var settled = false;
        try
        {
            await processor.ProcessAsync(context.Message.NotificationId, context.CancellationToken);
            settled = true;
        }
        catch (Exception) when (context.GetRetryAttempt() >= BusRegistration.RetryIntervals.Length && !context.CancellationToken.IsCancellationRequested)
        {
            // The last attempt: the bus gives it up; it stays unapplied in the journal and the recovery sweep brings it back.
            settled = true;
            throw;
        }
        finally
        {
            // Frees its room in the publisher's bound (in-memory transport), so the journal's backlog moves on.
            if (settled) publisher.Settled(context.Message.NotificationId);
        }
    }
}
