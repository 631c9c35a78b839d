using System.Text;
using B25.Alerting.Incidents;
using B25.Alerting.Pipeline;
using B25.Alerting.Storage;
using B25.Alerting.Tests.Support;
using B25.Alerting.Webhooks;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.Pipeline;

/// <summary>
/// While the bus is not healthy, a replica applies what waited in the journal over Bus:ApplyLocallyAfter, itself; never
/// while the bus is healthy, and never sooner. The look is driven by hand on a fake clock; the journal, the processor and
/// Slack are the service's own (a notification journaled straight into the store, which no bus ever hands over).
/// </summary>
public sealed class ApplyWithoutBusTests(BusStates buses) : IClassFixture<BusStates>
{
    // Ahead of the real clock: the service's own recovery sweep (on the real clock) republishes only what waited over 30 s.
    private static readonly DateTimeOffset Received = DateTimeOffset.UtcNow.AddHours(1);

    [Fact]
    public async Task Waiting_notifications_are_applied_here_only_while_the_bus_is_down_and_only_after_the_delay()
    {
        using var slack = new SlackStandIn();
        using var factory = new AlertingFactory(slack);
        _ = factory.Services; // started: storage migrated
        var journal = factory.Services.GetRequiredService<IJournalStore>();
        const string groupKey = "{}:{alertname=\"NoBus\"}";
        var body = Body(groupKey, Firing("nb1", alertname: "NoBus"));
        var receiver = ReceiverFor(Firing("nb1", alertname: "NoBus"));
        var group = NotificationIdentity.GroupId(receiver, groupKey);
        await journal.AppendAsync([new JournalEntry("n-nobus-1", group, receiver, groupKey, Received.ToUnixTimeMilliseconds(), Encoding.UTF8.GetBytes(body))],
            _ => true, TimeSpan.FromSeconds(5), CancellationToken.None);

        var bus = buses.NeverStarted;
        var time = new FakeTimeProvider(Received.AddSeconds(1));
        var look = new ApplyWithoutBus(() => bus.CheckHealth(), journal, factory.Services.GetRequiredService<IncidentProcessor>(),
            Options.Create(new BusOptions { Transport = BusTransport.RabbitMq, ApplyLocallyAfter = TimeSpan.FromSeconds(2) }), time,
            NullLogger<ApplyWithoutBus>.Instance);
        async Task<bool> Applied() => (await journal.FindWithNextAsync("n-nobus-1", CancellationToken.None))!.Value.Head.ProcessedAt is not null;

        // The bus down, but the notification journaled only a second ago: the bus may still hand it over.
        Assert.Equal(0, await look.LookAsync(CancellationToken.None));
        Assert.False(await Applied());

        // Past the delay, but a healthy bus carries it: nothing is applied here.
        time.SetUtcNow(Received.AddSeconds(3));
        bus = buses.Working;
        Assert.Equal(0, await look.LookAsync(CancellationToken.None));
        Assert.False(await Applied());

        // Past the delay with the bus down: applied here, and paged.
        bus = buses.NeverStarted;
        Assert.Equal(1, await look.LookAsync(CancellationToken.None));
        Assert.True(await Applied());
        await Eventually.True(() => slack.Posts.Count == 1, "paged", 20_000);

        // Applied once: the next look finds nothing waiting.
        time.SetUtcNow(Received.AddSeconds(4));
        Assert.Equal(0, await look.LookAsync(CancellationToken.None));
    }
}
