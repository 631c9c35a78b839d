using System.Threading.Channels;
using MassTransit;

namespace B25.Alerting.Pipeline;

/// <summary>
/// Publishes journaled notifications to the bus off the request path: Alertmanager's answer waits for
/// the durable journal write only, not for a broker round trip. A notification whose publish is lost
/// (crash, broker down) is still in the journal, and the recovery sweep publishes it again.
/// </summary>
/// <remarks>
/// Publishes run concurrently, up to <see cref="MaxInFlight"/> at once: each one waits for the broker's
/// confirm, and one at a time capped a replica at one confirm round trip per notification (tens per
/// second under load). The order of publishes does not matter: a group's notifications are applied in
/// journal order whatever order they arrive in.
/// </remarks>
internal sealed partial class NotificationPublisher(IBus bus, ILogger<NotificationPublisher> logger) : BackgroundService
{
    internal const int MaxInFlight = 64;

    // With the trace of the request (or timer) that journaled it: the bus hop continues that trace.
    private readonly Channel<(NotificationAccepted Message, System.Diagnostics.ActivityContext Trace)> _queue =
        Channel.CreateUnbounded<(NotificationAccepted, System.Diagnostics.ActivityContext)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly SemaphoreSlim _slots = new(MaxInFlight, MaxInFlight);

    public void Enqueue(NotificationAccepted message) =>
        _queue.Writer.TryWrite((message, System.Diagnostics.Activity.Current?.Context ?? default));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var (message, trace) in _queue.Reader.ReadAllAsync(stoppingToken))
            {
                await _slots.WaitAsync(stoppingToken);
                _ = PublishAsync(message, trace, stoppingToken);
            }
        }
        finally
        {
            // Let publishes in flight finish (or fail) before the bus stops under them.
            for (var i = 0; i < MaxInFlight; i++) await _slots.WaitAsync(CancellationToken.None);
        }
    }

    private async Task PublishAsync(NotificationAccepted message, System.Diagnostics.ActivityContext trace, CancellationToken stoppingToken)
    {
        using var activity = trace == default ? null
            : Observability.Tracing.Source.StartActivity("publish notification", System.Diagnostics.ActivityKind.Internal, trace);
        activity?.SetTag("b25.notification_id", message.NotificationId);
        try
        {
            await bus.Publish(message, stoppingToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
        {
            LogPublishFailed(ex, message.NotificationId);
        }
        catch (OperationCanceledException)
        {
            // Stopping: the journal still holds it, the next start's sweep publishes it.
        }
        finally
        {
            _slots.Release();
        }
    }

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "Notification {NotificationId} journaled but not published to the bus; the recovery sweep will publish it")]
    private partial void LogPublishFailed(Exception ex, string notificationId);
}
