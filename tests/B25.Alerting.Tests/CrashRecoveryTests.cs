using System.Net;
using System.Net.Http.Headers;
using System.Text;
using B25.Alerting.Tests.Support;
using B25.Alerting.Webhooks;
using Dapper;
using Microsoft.Data.Sqlite;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests;

/// <summary>kill -9 after a 2xx: after restart every journaled notification is delivered, exactly once.</summary>
public sealed class CrashRecoveryTests : IDisposable
{
    private readonly SlackStandIn _slack = new();
    private readonly string _db = Path.Combine(Path.GetTempPath(), $"b25-crash-{Guid.NewGuid():N}.db");

    public void Dispose()
    {
        _slack.Dispose();
        SqliteConnection.ClearAllPools();
        foreach (var suffix in new[] { "", "-wal", "-shm", ".lock" }) File.Delete(_db + suffix);
    }

    private Dictionary<string, string> Environment() => ServiceProcess.Settings(_db, _slack);

    private static async Task<HttpStatusCode> Post(ServiceProcess service, string body)
    {
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AlertingFactory.Token);
        var response = await http.PostAsync($"{service.BaseUrl}/webhooks/alertmanager", new StringContent(body, Encoding.UTF8, "application/json"));
        return response.StatusCode;
    }

    [Fact]
    public async Task Killed_between_accept_and_delivery_delivers_exactly_once_after_restart()
    {
        var slackDown = true;
        _slack.Respond(_ => Volatile.Read(ref slackDown) ? (503, "down", null) : null);

        await using (var first = await ServiceProcess.StartAsync(Environment()))
        {
            Assert.Equal(HttpStatusCode.OK, await Post(first, Body("g-crash", Firing("a1"), Firing("a2"))));
            Assert.Equal(HttpStatusCode.OK, await Post(first, Body("g-crash-2", Firing("b1", severity: "warning"))));
            await Eventually.True(() => _slack.Calls.Count >= 2, "delivery attempted while Slack is down", 15_000);
            await first.KillAsync();
        }
        Assert.Empty(_slack.Posts);

        Volatile.Write(ref slackDown, false);
        await using (var second = await ServiceProcess.StartAsync(Environment()))
        {
            await Eventually.True(() => _slack.Posts.Count == 2, "both incidents delivered after restart", 20_000);
            await Settled.ForSqliteAsync(_db);
            Assert.Equal(2, _slack.Posts.Count); // exactly once
            Assert.Equal(["#trading-alerts", "#trading-alerts-critical"], _slack.Posts.Select(p => p.Channel).Order());

            // A copy Alertmanager retries after the crash changes nothing.
            Assert.Equal(HttpStatusCode.OK, await Post(second, Body("g-crash", Firing("a1"), Firing("a2"))));
            await Settled.ForSqliteAsync(_db);
            Assert.Equal(2, _slack.Calls.Count(c => c.Answered)); // the retried copy is a duplicate
            await second.KillAsync();
        }

        // Another restart replays nothing.
        await using (await ServiceProcess.StartAsync(Environment()))
        {
            // Watched for a while on purpose: a replay would start from the recovery sweep after the start, when
            // nothing is pending yet, so a settled state proves nothing here.
            await Eventually.Stays(() => _slack.Calls.Count(c => c.Answered) == 2, "nothing replayed", 2_000);
        }
    }

    [Fact]
    public async Task Journaled_but_unprocessed_notification_is_processed_at_start()
    {
        // The state a crash leaves between journal commit and processing: a row with processed_at NULL.
        await using (var boot = await ServiceProcess.StartAsync(Environment())) await boot.KillAsync(); // create the schema
        var body = Encoding.UTF8.GetBytes(Body("g-journal", Firing("j1")));
        var (notification, _) = NotificationParser.Parse(body);
        await using (var connection = new SqliteConnection($"Data Source={_db};Pooling=False"))
        {
            await connection.ExecuteAsync(
                "INSERT INTO notifications (id, group_id, receiver, group_key, received_at, body) VALUES (@id, @g, @r, @k, @at, @body)",
                new
                {
                    id = NotificationIdentity.NotificationId(notification!),
                    g = NotificationIdentity.GroupId(notification!.Receiver!, notification.GroupKey!),
                    r = notification.Receiver, k = notification.GroupKey,
                    at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), body,
                });
        }

        await using var service = await ServiceProcess.StartAsync(Environment());
        await Eventually.True(() => _slack.Posts.Count == 1, "the journaled notification is delivered", 15_000);
        await Settled.ForSqliteAsync(_db);
        Assert.Single(_slack.Posts); // once
    }
}
