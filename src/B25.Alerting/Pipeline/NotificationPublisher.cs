using System.Threading.Channels;
using MassTransit;

namespace B25.Alerting.Pipeline;

/// <summary>
/// Publishes journaled notifications to the bus off the request path: Alertmanager's answer waits for
/// the durable journal write only, not for a broker round trip. A notification whose publish is lost
/// (crash, broker down) is still in the journal, and the recovery sweep publishes it again.
/// </summary>
internal sealed partial class NotificationPublisher(IBus bus, ILogger<NotificationPublisher> logger) : BackgroundService
{
    private readonly Channel<NotificationAccepted> _queue = Channel.CreateUnbounded<NotificationAccepted>(
        new UnboundedChannelOptions { SingleReader = true });

    public void Enqueue(NotificationAccepted message) => _queue.Writer.TryWrite(message);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var message in _queue.Reader.ReadAllAsync(stoppingToken))
        {
            try
            {
                await bus.Publish(message, stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                LogPublishFailed(ex, message.NotificationId);
            }
        }
    }

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "Notification {NotificationId} journaled but not published to the bus; the recovery sweep will publish it")]
    private partial void LogPublishFailed(Exception ex, string notificationId);
}
