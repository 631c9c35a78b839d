using System.Net;
using B25.Alerting.Pipeline;
using B25.Alerting.Tests.Support;
using Dapper;
using Microsoft.Extensions.DependencyInjection;

namespace B25.Alerting.Tests.Pipeline;

/// <summary>The journal is the queue: past Bus:MaxHeldNotifications, notifications wait in the journal, not in memory, and are all applied.</summary>
public sealed class BacklogBoundTests
{
    private const int Bound = 16;

    [Fact]
    public async Task A_flood_20_times_the_bound_is_all_applied_in_group_order_while_memory_holds_at_most_the_bound()
    {
        using var factory = new AlertingFactory(null, new() { ["Bus:MaxHeldNotifications"] = Bound.ToString() });
        var client = factory.Authorized();
        var publisher = factory.Services.GetRequiredService<NotificationPublisher>();

        // 40 groups that open, change and close (three notifications each, sent in order), and 200 groups of one notification,
        // all at once: 320 notifications, 20 times the bound.
        var groups = Enumerable.Range(0, 40).Select(g => $"{{}}:{{alertname=\"Flood\",group=\"g{g}\"}}").ToList();
        async Task SendAsync(string body)
        {
            using var response = await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(body));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        var lifecycles = groups.Select(async (key, g) =>
        {
            await SendAsync(Notifications.Body(key, Notifications.Firing($"a{g}")));
            await SendAsync(Notifications.Body(key, Notifications.Firing($"a{g}"), Notifications.Firing($"b{g}")));
            await SendAsync(Notifications.Body(key, Notifications.Resolved($"a{g}"), Notifications.Resolved($"b{g}")));
        });
        var singles = Enumerable.Range(0, 200).Select(i => SendAsync(Notifications.Body($"{{}}:{{alertname=\"Single\",n=\"{i}\"}}", Notifications.Firing($"s{i}"))));
        await Task.WhenAll(lifecycles.Concat(singles));

        await using var db = await factory.OpenStorageAsync();
        Assert.Equal(320L, await db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM notifications"));
        await Eventually.True(async () => await db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM notifications WHERE processed_at IS NULL") == 0,
            "every accepted notification applied", timeoutMs: 120_000);

        Assert.True(publisher.LeftInJournalCount > 0, "the flood went past the bound (some notifications waited in the journal)");
        Assert.InRange(publisher.PeakHeld, 1, Bound);
        await Eventually.True(() => publisher.Held == 0, "nothing held once all is applied");

        // Journal order per group: opened, changed, closed, whatever order the journal handed them back in.
        foreach (var key in groups)
        {
            var outcomes = (await db.QueryAsync<string>("SELECT outcome FROM notifications WHERE group_key = @key ORDER BY seq", new { key })).ToList();
            Assert.Equal(["Opened", "Changed", "Closed"], outcomes);
        }
        Assert.Equal(200L, await db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM incidents WHERE state = 'open'"));
        Assert.Equal(40L, await db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM incidents WHERE state = 'closed'"));
    }
}
