using B25.Alerting.Pipeline;
using B25.Alerting.Webhooks;
using B25.Alerting.Tests.Support;
using MassTransit;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Tests.Pipeline;

/// <summary>
/// A notification published while no queue is bound to take it (a fresh broker, before the service's receive endpoint
/// declared its queue) is not dropped by RabbitMQ: the publish comes back failed, the notification stays in the journal, and
/// it is published again from there once a queue takes it. Real broker, in a virtual host of its own.
/// </summary>
[Collection(RabbitMqCollection.Name)]
public sealed class MandatoryPublishTests(RabbitMqBroker broker)
{
    [Fact]
    public async Task A_notification_no_queue_took_is_published_again_from_the_journal_once_a_queue_is_bound()
    {
        var uri = await broker.AddVirtualHostAsync($"mandatory-{Guid.NewGuid():N}");
        await using var stores = await TestStores.CreateAsync();
        const string id = "n-before-any-queue";
        var group = NotificationIdentity.GroupId("r", "k");
        await stores.Journal.AppendAsync([new JournalEntry(id, group, "r", "k", 1, "{}"u8.ToArray())], _ => true,
            TimeSpan.FromSeconds(5), CancellationToken.None);

        // The service's side: a bus that publishes and has no receive endpoint (its queue not declared yet).
        var publishing = Bus.Factory.CreateUsingRabbitMq(cfg => cfg.Host(new Uri(uri)));
        await publishing.StartAsync();
        var publisher = new NotificationPublisher(publishing, stores.Journal,
            Options.Create(new BusOptions { Transport = BusTransport.RabbitMq, MaxHeldNotifications = 16 }), NullLogger<NotificationPublisher>.Instance);
        using var stop = new CancellationTokenSource();
        await publisher.StartAsync(stop.Token);
        IBusControl? consuming = null;
        try
        {
            publisher.Enqueue(new NotificationAccepted(id, group, NotificationIdentity.PartitionKey(group)));
            await Eventually.True(() => publisher.PublishFailures >= 1, "RabbitMQ returned the publish: no queue was bound", 20_000);

            // Now a queue takes the notifications: the one returned before reaches it, from the journal.
            var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            consuming = Bus.Factory.CreateUsingRabbitMq(cfg =>
            {
                cfg.Host(new Uri(uri));
                cfg.ReceiveEndpoint("notifications-bound-late", e => e.Handler<NotificationAccepted>(context =>
                {
                    received.TrySetResult(context.Message.NotificationId);
                    return Task.CompletedTask;
                }));
            });
            await consuming.StartAsync();
            Assert.Equal(id, await received.Task.WaitAsync(TimeSpan.FromSeconds(60)));
        }
        finally
        {
            await stop.CancelAsync();
            await publisher.StopAsync(CancellationToken.None);
            if (consuming is not null) await consuming.StopAsync();
            await publishing.StopAsync();
        }
    }
}
