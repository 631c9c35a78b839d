using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using B25.Alerting.Tests.Support;
using Xunit.Abstractions;
using Microsoft.Data.Sqlite;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.Faults;

/// <summary>
/// Storage that stops accepting writes right after Slack accepted a post: the service must not post
/// again while it cannot record the post, must say it is not ready, must answer webhooks 503, and must
/// repeat nothing once storage works again. Real SQLite on a real ext4 filesystem whose files turn
/// immutable (every write fails with EPERM) inside Slack's answer.
/// </summary>
[Collection(MountCollection.Name)]
public sealed class StorageFaultTests(ITestOutputHelper output) : IDisposable
{
    private readonly SlackStandIn _slack = new();
    private Ext4Mount? _disk;

    public void Dispose()
    {
        _slack.Dispose();
        SqliteConnection.ClearAllPools();
        _disk?.Dispose();
    }

    private static HttpClient Client()
    {
        var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AlertingFactory.Token);
        return http;
    }

    [MountFact(Ext4 = true)]
    public async Task A_post_that_cannot_be_recorded_is_not_posted_again_and_readiness_reports_it()
    {
        _disk = Ext4Mount.Create();
        var faultOn = 0;
        _slack.Respond(call =>
        {
            // Slack accepted the first top-level post: the disk turns unwritable before the answer arrives.
            if (call.Method == "chat.postMessage" && call.ThreadTs is null && Interlocked.Exchange(ref faultOn, 1) == 0)
                _disk!.Immutable(true);
            return null;
        });
        var db = Path.Combine(_disk!.Folder, "b25.db");
        await using var service = await ServiceProcess.StartAsync(ServiceProcess.Settings(db, _slack,
            new Dictionary<string, string> { ["Webhook__JournalTimeout"] = "00:00:02" }));
        using var http = Client();
        try
        {
            await Scenario(service, http, _disk);
        }
        finally
        {
            output.WriteLine(service.Output);
        }
    }

    private async Task Scenario(ServiceProcess service, HttpClient http, Ext4Mount disk)
    {
        var firing = await http.PostAsync($"{service.BaseUrl}/webhooks/alertmanager", Json(Body("g-disk", Firing("a1", severity: "warning"))));
        Assert.Equal(HttpStatusCode.OK, firing.StatusCode);
        await Eventually.True(() => _slack.Posts.Count == 1, "the post reached Slack", 15_000);

        var refused = await http.PostAsync($"{service.BaseUrl}/webhooks/alertmanager", Json(Body("g-disk-2", Firing("b1", severity: "warning"))));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        await Eventually.Stays(() => _slack.Calls.Count(c => c.Method == "chat.postMessage") == 1, "no post again while the result cannot be recorded", 5_000);
        Assert.Contains("b25_alerting_storage_write_fault 1", await http.GetStringAsync($"{service.BaseUrl}/metrics"));
        await Eventually.True(async () => (await http.GetAsync($"{service.BaseUrl}/health/ready")).StatusCode == HttpStatusCode.ServiceUnavailable,
            "readiness reports the storage fault", 15_000);
        var ready = await (await http.GetAsync($"{service.BaseUrl}/health/ready")).Content.ReadAsStringAsync();
        Assert.Contains("storage", ready);

        disk.Immutable(false);
        await Eventually.True(async () => (await http.GetAsync($"{service.BaseUrl}/health/ready")).StatusCode == HttpStatusCode.OK,
            "ready again once storage works", 15_000);
        await Eventually.True(async () => await SlackDeliveryStatus(http, service, "g-disk") == "sent", "the held post is recorded as sent", 15_000);

        // Nothing repeated, and the incident goes on: the resolve edits the same message.
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync($"{service.BaseUrl}/webhooks/alertmanager",
            Json(Body("g-disk", Resolved("a1", severity: "warning"))))).StatusCode);
        await Eventually.True(() => _slack.Updates.Count == 1, "the resolve edits the message", 15_000);
        Assert.Equal(_slack.Posts[0].Ts, _slack.Updates[0].MessageTs);
        Assert.Single(_slack.Posts);
    }

    [MountFact(Ext4 = true)]
    public async Task A_service_started_on_an_unwritable_database_folder_exits_1_with_one_line()
    {
        _disk = Ext4Mount.Create();
        Ext4Mount.Chattr(true, _disk.Folder); // nothing can be created in it: as on a read-only filesystem

        var (exitCode, log) = await ServiceProcess.RunToExitAsync(ServiceProcess.Settings(Path.Combine(_disk.Folder, "b25.db"), _slack));

        Ext4Mount.Chattr(false, _disk.Folder);
        output.WriteLine(log);
        Assert.Equal(1, exitCode);
        Assert.Single(log.Split('\n'), line => line.Contains("Storage: cannot write") && line.Contains("not starting"));
        Assert.DoesNotContain("   at ", log);
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static async Task<string?> SlackDeliveryStatus(HttpClient http, ServiceProcess service, string groupKey)
    {
        var incidents = JsonNode.Parse(await http.GetStringAsync($"{service.BaseUrl}/api/incidents?limit=100"))!.AsArray();
        var incident = incidents.FirstOrDefault(i => i!["groupKey"]!.GetValue<string>() == groupKey);
        return incident?["deliveries"]!.AsArray().FirstOrDefault(d => d!["kind"]!.GetValue<string>() == "post")?["status"]!.GetValue<string>();
    }
}
