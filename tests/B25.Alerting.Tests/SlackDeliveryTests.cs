using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using B25.Alerting.Tests.Support;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests;

/// <summary>Retry classification as data: what Slack answers decides retry, give up, or wait.</summary>
public sealed class SlackDeliveryTests : SlackScenario
{
    private async Task<JsonObject> OnlyIncident(string state = "open") =>
        (await Client.GetFromJsonAsync<JsonArray>($"/api/incidents?state={state}"))!.Single()!.AsObject();

    [Fact]
    public async Task Http_429_is_retried_after_retry_after()
    {
        var refused = 0;
        Slack.Respond(_ => Interlocked.Increment(ref refused) == 1 ? (429, "", 1) : null);

        await Send(Body("g1", Firing("a1")));

        await Eventually.True(() => Slack.Posts.Count == 1, "posted after the 429");
        var attempts = Slack.Calls.Where(c => c.Method == "chat.postMessage").ToList();
        Assert.Equal(2, attempts.Count);
        Assert.False(attempts[0].Answered);
    }

    [Fact]
    public async Task Ratelimited_error_in_an_ok_response_is_retried()
    {
        var refused = 0;
        Slack.Respond(_ => Interlocked.Increment(ref refused) == 1 ? (200, """{"ok":false,"error":"ratelimited"}""", 1) : null);

        await Send(Body("g1", Firing("a1")));

        await Eventually.True(() => Slack.Posts.Count == 1, "posted after ratelimited");
    }

    [Fact]
    public async Task Outage_longer_than_the_quick_retries_keeps_the_page_queued_until_slack_is_back()
    {
        var down = true;
        Slack.Respond(_ => Volatile.Read(ref down) ? (503, "down", null) : null);

        await Send(Body("g1", Firing("a1")));
        // A 5xx to a post may hide a message Slack kept: no blind retry in place; later attempts look first.
        await Eventually.True(() => Slack.Calls.Count >= 2 && Slack.Reads.Count > 0,
            "retried from the outbox after looking in the channel", 20_000);
        // The failed attempt is recorded on the delivery, which stays queued.
        await Eventually.True(async () =>
        {
            var post = (await OnlyIncident())["deliveries"]!.AsArray().Single(d => d!["channel"]!.GetValue<string>() == "slack")!;
            return post["status"]!.GetValue<string>() == "pending" && post["lastError"]?.GetValue<string>().Contains("503") == true;
        }, "the post is pending with the 503 recorded");

        Volatile.Write(ref down, false);

        await Eventually.True(() => Slack.Posts.Count == 1, "delivered once Slack is back", 15_000);
        await Factory.SettledAsync();
        Assert.Single(Slack.Posts); // exactly once
    }

    [Fact]
    public async Task Permanent_error_is_recorded_and_counted_not_retried()
    {
        Slack.Respond(c => c.Channel == "#trading-alerts-critical" ? (200, """{"ok":false,"error":"channel_not_found"}""", null) : null);
        await Send(Body("g1", Firing("a1")));
        await Eventually.True(() => Slack.Calls.Count == 1, "one attempt");
        await Factory.SettledAsync();
        Assert.Single(Slack.Calls); // no retry of a permanent error

        var delivery = (await OnlyIncident())["deliveries"]!.AsArray().Single(d => d!["channel"]!.GetValue<string>() == "slack")!;
        Assert.Equal("failed", delivery["status"]!.GetValue<string>());
        Assert.Equal("channel_not_found", delivery["lastError"]!.GetValue<string>());
        // Counted in ExactMetricsTests (the counters are process-wide).

        // Later changes to that incident have no message to edit: recorded as failed, nothing sent.
        await Send(Body("g1", Firing("a1"), Firing("a2")));
        await Eventually.True(async () => (await OnlyIncident())["deliveries"]!.AsArray().Count(d => d!["status"]!.GetValue<string>() == "failed") == 3,
            "edits recorded as failed");
        Assert.Single(Slack.Calls);
    }

    [Fact]
    public async Task One_broken_channel_does_not_hold_up_another()
    {
        Slack.Respond(c => c.Channel == "#trading-alerts-critical" ? (500, "boom", null) : null);

        await Send(Body("g-crit", Firing("a1", severity: "critical")));
        await Send(Body("g-warn", Firing("b1", severity: "warning")));

        await Eventually.True(() => Slack.Posts.Any(p => p.Channel == "#trading-alerts"), "the healthy channel is served");
        Assert.DoesNotContain(Slack.Posts, p => p.Channel == "#trading-alerts-critical");
    }

    [Fact]
    public async Task Storm_of_changes_to_one_message_is_merged()
    {
        var slow = new ManualResetEventSlim(true);
        Slack.Respond(c =>
        {
            slow.Wait(TimeSpan.FromSeconds(10));
            return null;
        });
        await Send(Body("g1", Firing("a0")));
        await Eventually.True(() => Slack.Posts.Count == 1, "first post");

        // Hold Slack while ten changes arrive; they must leave as one edit and one reply.
        slow.Reset();
        await Send(Body("g1", Firing("a0"), Firing("a1")));
        for (var i = 2; i <= 10; i++)
            await Send(Body("g1", Enumerable.Range(0, i + 1).Select(n => Firing($"a{n}")).ToArray()));
        await Eventually.True(async () => (await OnlyIncident())["revision"]!.GetValue<long>() == 11, "all changes applied while Slack is held");
        slow.Set();

        await Eventually.True(async () =>
        {
            var incident = await OnlyIncident();
            return incident["revision"]!.GetValue<long>() == 11
                   && incident["deliveries"]!.AsArray().All(d => d!["status"]!.GetValue<string>() != "pending");
        }, "all ten changes processed and delivered", 15_000);
        var trace = string.Join("\n", (await OnlyIncident())["deliveries"]!.AsArray().Select(d => d!.ToJsonString()));
        Assert.True(Slack.Updates.Count is >= 1 and <= 2, trace);
        Assert.InRange(Slack.Replies.Count, 1, 2);
        Assert.Contains("11 firing", Slack.Updates[^1].Text);
        var merged = (await OnlyIncident())["deliveries"]!.AsArray().Count(d => d!["status"]!.GetValue<string>() == "merged");
        Assert.True(merged >= 16, $"merged deliveries: {merged}");
    }
}
