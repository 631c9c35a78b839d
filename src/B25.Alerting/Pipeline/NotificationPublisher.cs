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

    private readonly Channel<NotificationAccepted> _queue = Channel.CreateUnbounded<NotificationAccepted>(
        new UnboundedChannelOptions { SingleReader = true });
    private readonly SemaphoreSlim _slots = new(MaxInFlight, MaxInFlight);

    public void Enqueue(NotificationAccepted message) => _queue.Writer.TryWrite(message);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var message in _queue.Reader.ReadAllAsync(stoppingToken))
            {
                await _slots.WaitAsync(stoppingToken);
                _ = PublishAsync(message, stoppingToken);
            }
        }
        finally
        {
            // Let publishes in flight finish (or fail) before the bus stops under them.
            for (var i = 0; i < MaxInFlight; i++) await _slots.WaitAsync(CancellationToken.None);
        }
    }

    private async Task PublishAsync(NotificationAccepted message, CancellationToken stoppingToken)
    {
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
