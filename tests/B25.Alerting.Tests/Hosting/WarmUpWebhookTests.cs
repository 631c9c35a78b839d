using System.Net;
using B25.Alerting.Tests.Support;
using Dapper;
using Microsoft.Data.Sqlite;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.Hosting;

/// <summary>
/// The start's webhook step, in a real process (a socket to call): the sample goes through the service's own webhook
/// endpoint and the state machine, and none of it is stored, sent, counted or answered to anyone else.
/// </summary>
public sealed class WarmUpWebhookTests : IDisposable
{
    private readonly SlackStandIn _slack = new();
    private readonly string _db = Path.Combine(Path.GetTempPath(), $"b25-warm-webhook-{Guid.NewGuid():N}.db");

    public void Dispose()
    {
        _slack.Dispose();
        SqliteConnection.ClearAllPools();
        foreach (var suffix in new[] { "", "-wal", "-shm", ".lock" }) File.Delete(_db + suffix);
    }

    private async Task<long> RowsAsync(string table)
    {
        await using var db = new SqliteConnection($"Data Source={_db}");
        return await db.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM {table}");
    }

    [Fact]
    public async Task The_sample_goes_through_the_real_webhook_and_leaves_no_row_no_page_and_no_count()
    {
        await using var service = await ServiceProcess.StartAsync(ServiceProcess.Settings(_db, _slack, new Dictionary<string, string>
        {
            ["Logging__LogLevel__B25.Alerting.Hosting.StartupWarmUp"] = "Information",
        }));
        using var http = new HttpClient();

        // Ready means warmed up: the step ran over HTTP (a skipped or failed step says so in the line).
        await Eventually.True(() => service.Output.Contains("Warmed up in"), "the warm-up's line is logged");
        var warmedUp = Assert.Single(service.Output.Split('\n'), l => l.Contains("Warmed up in"));
        Assert.Matches(@"webhook \d+ ms", warmedUp);

        foreach (var table in new[] { "notifications", "incidents", "alerts", "deliveries" })
            Assert.True(await RowsAsync(table) == 0, $"the warm-up left a row in {table}");
        Assert.All(_slack.Calls, c => Assert.Equal("auth.test", c.Method));
        var metrics = await http.GetStringAsync(service.BaseUrl + "/metrics");
        Assert.Contains("b25_alerting_notifications_received_total 0", metrics);
        Assert.Contains("b25_alerting_accept_duration_seconds_count 0", metrics);
        Assert.Contains("b25_alerting_incidents_opened_total 0", metrics);
        Assert.DoesNotContain("route=\"/webhooks/alertmanager\"", metrics);
        Assert.DoesNotContain("route=\"/health/live\"", metrics); // the warm-up's other call to itself

        // The header with any value but the process's own secret is an ordinary request: journaled, applied, paged, counted.
        using var request = new HttpRequestMessage(HttpMethod.Post, service.BaseUrl + "/webhooks/alertmanager")
        {
            Content = AlertingFactory.Json(Body("g-guess", Firing("a1"))),
        };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AlertingFactory.Token);
        request.Headers.Add("X-B25-Warm-Up", "0123456789abcdef0123456789abcdef");
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("\"accepted\"", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, await RowsAsync("notifications"));
        await Eventually.True(() => _slack.Posts.Count == 1, "the guessed header's notification is paged");
        Assert.Contains("route=\"/webhooks/alertmanager\",status=\"200\"", await http.GetStringAsync(service.BaseUrl + "/metrics"));
    }
}
