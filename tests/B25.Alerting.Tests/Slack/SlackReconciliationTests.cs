using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using B25.Alerting.Tests.Support;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.Slack;

/// <summary>
/// A Slack call whose outcome is unknown (Slack kept the message but the answer never came, or the
/// process died before recording it) is reconciled through the channel history, never repeated blindly.
/// </summary>
public sealed class SlackReconciliationTests : IDisposable
{
    private readonly SlackStandIn _slack = new();
    // One database for the service before and after its restart.
    private readonly TestStores _db = TestStores.CreateAsync(migrate: false).GetAwaiter().GetResult();

    public void Dispose()
    {
        _slack.Dispose();
        _db.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    private int TopLevel => _slack.Messages.Count(m => !m.IsReply);

    /// <summary>Makes the first call that <paramref name="which"/> picks answer only after <paramref name="delay"/> (Slack keeps it at once).</summary>
    private void SlowFirst(TimeSpan delay, Func<SlackCall, bool> which)
    {
        var first = 0;
        _slack.Slow(delay, call => which(call) && Interlocked.Exchange(ref first, 1) == 0);
    }

    private static bool IsPost(SlackCall call) => call.Method == "chat.postMessage" && call.ThreadTs is null;

    private AlertingFactory Factory(Dictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>(_db.Settings) { ["Slack:RequestTimeout"] = "00:00:01" };
        foreach (var (k, v) in extra ?? []) settings[k] = v;
        return new AlertingFactory(_slack, settings);
    }

    private static async Task Send(HttpClient client, string body) =>
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(body))).StatusCode);

    private static async Task<string?> DeliveryStatus(HttpClient client, string kind)
    {
        var incidents = JsonNode.Parse(await client.GetStringAsync("/api/incidents?state=open&limit=10"))!.AsArray()
            .Concat(JsonNode.Parse(await client.GetStringAsync("/api/incidents?state=closed&limit=10"))!.AsArray());
        return incidents.SelectMany(i => i!["deliveries"]!.AsArray())
            .Where(d => d!["kind"]!.GetValue<string>() == kind).Select(d => d!["status"]!.GetValue<string>()).LastOrDefault();
    }

    [Fact]
    public async Task A_post_whose_answer_times_out_is_found_in_the_history_and_adopted_not_posted_again()
    {
        SlowFirst(TimeSpan.FromSeconds(4), IsPost);
        using var factory = Factory();
        using var client = factory.Authorized();

        await Send(client, Body("g-slow", Firing("a1", severity: "warning")));
        await Eventually.True(async () => await DeliveryStatus(client, "post") == "sent", "the post is recorded after reconciliation", 20_000);
        Assert.Contains(_slack.Reads, r => r.Method == "conversations.history");
        await factory.SettledAsync();
        Assert.Equal(1, TopLevel); // one top-level message

        // The adopted message is the one later edits go to.
        await Send(client, Body("g-slow", Resolved("a1", severity: "warning")));
        await Eventually.True(() => _slack.Updates.Count == 1, "the resolve edits the message", 15_000);
        Assert.Equal(_slack.Messages.Single(m => !m.IsReply).Ts, _slack.Updates[0].MessageTs);
        Assert.Contains("RESOLVED", _slack.Updates[0].Text);
        Assert.Equal(1, TopLevel);
    }

    [Fact]
    public async Task A_thread_reply_whose_answer_times_out_is_found_in_the_thread_and_not_posted_again()
    {
        SlowFirst(TimeSpan.FromSeconds(4), call => call.Method == "chat.postMessage" && call.ThreadTs is not null);
        using var factory = Factory();
        using var client = factory.Authorized();

        await Send(client, Body("g-reply", Firing("a1", severity: "warning"), Firing("a2", severity: "warning")));
        await Eventually.True(() => TopLevel == 1, "posted", 15_000);
        await Send(client, Body("g-reply", Resolved("a1", severity: "warning"), Firing("a2", severity: "warning")));
        await Eventually.True(async () => await DeliveryStatus(client, "reply") == "sent", "the reply is recorded after reconciliation", 20_000);
        Assert.Contains(_slack.Reads, r => r.Method == "conversations.replies");
        await factory.SettledAsync();
        Assert.Equal(1, _slack.Messages.Count(m => m.IsReply)); // one thread reply
    }

    [Fact]
    public async Task Without_the_history_scope_an_unknown_post_is_posted_again_as_documented()
    {
        _slack.FailHistory("missing_scope");
        SlowFirst(TimeSpan.FromSeconds(4), IsPost);
        using var factory = Factory();
        using var client = factory.Authorized();

        await Send(client, Body("g-noscope", Firing("a1", severity: "warning")));
        await Eventually.True(async () => await DeliveryStatus(client, "post") == "sent", "posted again and recorded", 20_000);
        await factory.SettledAsync();
        Assert.Equal(2, TopLevel); // the documented duplicate, and no more
    }

    [Fact]
    public async Task Killed_after_Slack_accepted_a_post_the_restarted_service_adopts_it()
    {
        SlowFirst(TimeSpan.FromSeconds(60), IsPost);
        var environment = ServiceProcess.Settings(_db, _slack);
        await using (var first = await ServiceProcess.StartAsync(environment))
        {
            using var http = Client();
            Assert.Equal(HttpStatusCode.OK, (await http.PostAsync($"{first.BaseUrl}/webhooks/alertmanager",
                AlertingFactory.Json(Body("g-kill", Firing("a1", severity: "warning"))))).StatusCode);
            await Eventually.True(() => TopLevel == 1, "Slack holds the message, its answer is pending", 15_000);
            await first.KillAsync();
        }

        await using var second = await ServiceProcess.StartAsync(environment);
        using var client = Client();
        client.BaseAddress = new Uri(second.BaseUrl);
        await Eventually.True(async () => await DeliveryStatus(client, "post") == "sent", "the post is adopted after restart", 20_000);
        await Eventually.Stays(() => TopLevel == 1, "not posted again", 2_000);
        Assert.Contains(_slack.Reads, r => r.Method == "conversations.history");
    }

    private static HttpClient Client()
    {
        var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AlertingFactory.Token);
        return http;
    }
}
