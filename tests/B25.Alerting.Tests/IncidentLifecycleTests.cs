using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using B25.Alerting.Tests.Support;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests;

/// <summary>The incident state machine as Slack sees it: one message per incident, edited through its life.</summary>
public sealed class IncidentLifecycleTests : SlackScenario
{
    [Fact]
    public async Task First_firing_notification_posts_one_message_to_the_routed_channel()
    {
        await Send(Body("g1", Firing("a1")));

        await Eventually.True(() => Slack.Posts.Count == 1, "one chat.postMessage");
        var post = Slack.Posts[0];
        Assert.Equal("#trading-alerts-critical", post.Channel);
        Assert.Equal("Bearer xoxb-test", post.Authorization);
        Assert.Contains("FIRING", post.Text);
        Assert.NotNull(post.Blocks);
        await Factory.SettledAsync();
        Assert.Single(Slack.Calls); // nothing else is sent
    }

    [Theory]
    [InlineData("warning", "#trading-alerts")]
    [InlineData("info", "#trading-info")]
    [InlineData("page-me", "#trading-alerts")]
    public async Task Severity_routes_to_the_shipped_default_channels(string severity, string channel)
    {
        await Send(Body("g-" + severity, Firing("a1", severity: severity)));

        await Eventually.True(() => Slack.Posts.Count == 1, "one post");
        Assert.Equal(channel, Slack.Posts[0].Channel);
    }

    [Fact]
    public async Task Same_notification_again_delivers_nothing()
    {
        var body = Body("g1", Firing("a1"));
        await Send(body);
        await Eventually.True(() => Slack.Posts.Count == 1, "first post");

        await Send(body);
        var copyFromPeer = Build("g1", "b25-critical", Firing("a1"));
        copyFromPeer["externalURL"] = "http://alertmanager-2.test:9093";
        await Send(copyFromPeer.ToJsonString());

        await Factory.SettledAsync();
        Assert.Single(Slack.Calls); // duplicates deliver nothing
        // Counted in ExactMetricsTests (the counters are process-wide).
    }

    [Fact]
    public async Task Repeat_with_nothing_changed_delivers_nothing()
    {
        await Send(Body("g1", Firing("a1")));
        await Eventually.True(() => Slack.Posts.Count == 1, "first post");

        // repeat_interval: same alerts, same state, fresher annotation value.
        var repeat = Build("g1", "b25-critical", Firing("a1") with { Annotations = new() { ["summary"] = "value now 0.42" } });
        await Send(repeat.ToJsonString());

        await Factory.SettledAsync();
        Assert.Single(Slack.Calls); // a repeat delivers nothing
    }

    [Fact]
    public async Task Joining_alert_edits_the_message_and_replies_in_thread()
    {
        await Send(Body("g1", Firing("a1")));
        await Eventually.True(() => Slack.Posts.Count == 1, "first post");
        var ts = Slack.Posts[0].Ts;

        await Send(Body("g1", Firing("a1"), Firing("a2")));

        await Eventually.True(() => Slack.Updates.Count == 1 && Slack.Replies.Count == 1, "one update and one reply");
        Assert.Equal(ts, Slack.Updates[0].MessageTs);
        Assert.Equal(ts, Slack.Replies[0].ThreadTs);
        Assert.Contains("joined", Slack.Replies[0].Text);
        Assert.Contains("a2", Slack.Replies[0].Text);
        Assert.Contains("2 firing", Slack.Updates[0].Text);
        Assert.Single(Slack.Posts);
    }

    [Fact]
    public async Task Every_alert_resolved_edits_the_message_to_resolved_and_closes_the_incident()
    {
        await Send(Body("g1", Firing("a1"), Firing("a2")));
        await Eventually.True(() => Slack.Posts.Count == 1, "first post");

        await Send(Body("g1", Resolved("a1"), Firing("a2")));
        await Eventually.True(() => Slack.Updates.Count == 1, "partial resolve edits");
        Assert.DoesNotContain("RESOLVED", Slack.Updates[0].Text);

        await Send(Body("g1", Resolved("a1"), Resolved("a2")));
        await Eventually.True(() => Slack.Updates.Count == 2 && Slack.Replies.Count == 2, "resolve edits and replies");
        Assert.Contains("RESOLVED", Slack.Updates[1].Text);
        Assert.Contains("closed", Slack.Replies[1].Text);

        var closed = await Client.GetFromJsonAsync<JsonArray>("/api/incidents?state=closed");
        Assert.Single(closed!);
        Assert.Equal("closed", closed![0]!["state"]!.GetValue<string>());
        var open = await Client.GetFromJsonAsync<JsonArray>("/api/incidents");
        Assert.Empty(open!);
    }

    [Fact]
    public async Task Late_firing_copy_never_reopens_a_resolved_alert()
    {
        var firing = Body("g1", Firing("a1"));
        await Send(firing);
        // Wait for the post: a resolve that comes before it is folded into it (the post shows RESOLVED, no edit).
        await Eventually.True(() => Slack.Posts.Count == 1, "first post");
        await Send(Body("g1", Resolved("a1")));
        await Eventually.True(() => Slack.Updates.Count == 1 && Slack.Replies.Count == 1, "resolved edit and its thread reply");
        var before = Slack.Calls.Count;

        // A firing copy of the same (fingerprint, startsAt) arriving late, with other content than the first.
        var late = Build("g1", "b25-critical", Firing("a1") with { Annotations = new() { ["summary"] = "stale copy" } });
        await Send(late.ToJsonString());
        await Send(firing);

        await Factory.SettledAsync();
        Assert.Equal(before, Slack.Calls.Count); // late copies deliver nothing
        var open = await Client.GetFromJsonAsync<JsonArray>("/api/incidents");
        Assert.Empty(open!);
    }

    [Fact]
    public async Task Later_firing_after_close_is_a_new_incident_with_a_new_message()
    {
        await Send(Body("g1", Firing("a1")));
        await Eventually.True(() => Slack.Posts.Count == 1, "first post");
        await Send(Body("g1", Resolved("a1")));
        await Eventually.True(() => Slack.Updates.Count == 1, "first incident resolved");

        await Send(Body("g1", Firing("a1", startsAt: T0.AddHours(1))));

        await Eventually.True(() => Slack.Posts.Count == 2, "a second message");
        Assert.NotEqual(Slack.Posts[0].Ts, Slack.Posts[1].Ts);
        var closed = await Client.GetFromJsonAsync<JsonArray>("/api/incidents?state=closed");
        var open = await Client.GetFromJsonAsync<JsonArray>("/api/incidents?state=open");
        Assert.Single(closed!);
        Assert.Single(open!);
        Assert.NotEqual(closed![0]!["id"]!.GetValue<string>(), open![0]!["id"]!.GetValue<string>());
    }

    [Fact]
    public async Task Three_concurrent_copies_post_exactly_one_message()
    {
        var body = Body("g-ha", Firing("a1"), Firing("a2"));
        using var start = new ManualResetEventSlim();
        var sends = Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
        {
            start.Wait();
            using var client = Factory.Authorized();
            return await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(body));
        })).ToList();
        start.Set();
        var responses = await Task.WhenAll(sends);

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        await Eventually.True(() => Slack.Posts.Count == 1, "one post");
        await Factory.SettledAsync();
        Assert.Single(Slack.Calls); // exactly one message for three copies
    }

    [Fact]
    public async Task Alert_data_is_escaped_and_never_evaluated()
    {
        var alert = Firing("a1") with
        {
            Labels = new() { ["alertname"] = "Evil", ["severity"] = "critical", ["note"] = "<!channel> {{ 6 * 7 }}" },
            Annotations = new() { ["summary"] = "ping <@U123> see <http://evil.test|here> & {{ date.now }}" },
        };
        await Send(Body("g-evil", alert));

        await Eventually.True(() => Slack.Posts.Count == 1, "post");
        var raw = Slack.Posts[0].Body["blocks"]!.ToJsonString() + Slack.Posts[0].Text;
        var decoded = System.Text.RegularExpressions.Regex.Unescape(raw);
        Assert.DoesNotContain("<!channel>", decoded);
        Assert.DoesNotContain("<@U123>", decoded);
        Assert.DoesNotContain("<http://evil.test|here>", decoded);
        Assert.Contains("&lt;!channel&gt;", decoded);
        Assert.Contains("&lt;@U123&gt;", decoded);
        Assert.Contains("{{ 6 * 7 }}", decoded);
        Assert.Contains("{{ date.now }}", decoded);
        Assert.DoesNotContain("&gt; 42", decoded); // what {{ 6 * 7 }} after the escaped <!channel> would become if evaluated
    }

    [Fact]
    public async Task Five_hundred_alert_incident_posts_a_summary_within_block_kit_limits()
    {
        var alerts = Enumerable.Range(0, 500).Select(i => Firing($"fp{i:D4}") with
        {
            Annotations = new() { ["summary"] = new string('x', 400), ["description"] = new string('y', 2000) },
        }).ToArray();
        await Send(Body("g-big", alerts));

        await Eventually.True(() => Slack.Posts.Count == 1, "post");
        var blocks = Slack.Posts[0].Blocks!;
        Assert.InRange(blocks.Count, 1, 50);
        foreach (var block in blocks)
        {
            var text = block!["text"]?["text"]?.GetValue<string>();
            if (text is not null) Assert.InRange(text.Length, 1, 3000);
        }
        Assert.Contains("500 firing", Slack.Posts[0].Text);
        Assert.Contains(blocks, b => b!.ToJsonString().Contains("more alert"));
    }
}
