using System.Net;
using System.Text.Json.Nodes;
using B25.Alerting.Tests.Support;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.Acknowledgement;

/// <summary>One click in Slack is seen everywhere, exactly once: the message, the thread, PagerDuty, the audit.</summary>
public sealed class SlackAcknowledgementTests : AckScenario
{
    private static JsonArray ActionElements(SlackCall call) =>
        call.Blocks!.OfType<JsonObject>().LastOrDefault(b => b["type"]!.GetValue<string>() == "actions")?["elements"]!.AsArray() ?? [];

    /// <summary>Everything a message shows: its text and every text of its blocks, as Slack reads them (not JSON-escaped).</summary>
    private static string Shown(SlackCall call) =>
        call.Text + "\n" + string.Join("\n", (call.Blocks ?? []).SelectMany(Texts));

    private static IEnumerable<string> Texts(JsonNode? node) => node switch
    {
        JsonObject o => o.SelectMany(kv => kv.Key == "text" && kv.Value is JsonValue v && v.TryGetValue<string>(out var t) ? [t] : Texts(kv.Value)),
        JsonArray a => a.SelectMany(Texts),
        _ => [],
    };

    private static IEnumerable<string> ActionIds(SlackCall call) => ActionElements(call).Select(e => e!["action_id"]!.GetValue<string>());

    [Fact]
    public async Task The_message_carries_acknowledge_and_silence_with_the_incident_id()
    {
        var id = await OpenAsync();

        var elements = ActionElements(Slack.Posts[0]);
        var ack = elements.Single(e => e!["action_id"]!.GetValue<string>() == "acknowledge")!;
        Assert.Equal(id, ack["value"]!.GetValue<string>());
        var silence = elements.Single(e => e!["action_id"]!.GetValue<string>() == "silence")!;
        Assert.Equal([$"{id}|1h", $"{id}|4h", $"{id}|24h"], silence["options"]!.AsArray().Select(o => o!["value"]!.GetValue<string>()));
        Assert.DoesNotContain("unsilence", ActionIds(Slack.Posts[0]));
        // The runbook link (from the alerts' runbook_url) as a link button.
        Assert.Contains(elements, e => e!["action_id"]!.GetValue<string>() == "runbook" && e["url"] is not null);
    }

    [Fact]
    public async Task A_click_acknowledges_edits_the_message_replies_in_the_thread_and_acknowledges_in_PagerDuty()
    {
        var id = await OpenAsync();
        await Eventually.True(() => PagerDuty.Triggers.Count == 1, "the page went to PagerDuty");

        await ClickAsync("acknowledge", id, "U0ALICE");

        // Recorded before Slack got its answer.
        var incident = await Incident(id, byId: true);
        Assert.True(incident["handling"]!["acknowledged"]!.GetValue<bool>());
        Assert.Equal("U0ALICE", incident["handling"]!["acknowledgedBy"]!.GetValue<string>());
        Assert.Equal("slack", incident["handling"]!["acknowledgedVia"]!.GetValue<string>());
        var audit = Assert.Single(Actions(incident));
        Assert.Equal(("acknowledge", "U0ALICE", "slack", "acknowledged"),
            (audit["action"]!.GetValue<string>(), audit["actor"]!.GetValue<string>(), audit["source"]!.GetValue<string>(), audit["result"]!.GetValue<string>()));

        await Eventually.True(() => Slack.Updates.Any(u => Shown(u).Contains("Acknowledged* by <@U0ALICE> at")), "the message says who acknowledged");
        var update = Slack.Updates.Last(u => Shown(u).Contains("Acknowledged* by <@U0ALICE>"));
        Assert.DoesNotContain("acknowledge", ActionIds(update));
        Assert.Contains("silence", ActionIds(update));
        await Eventually.True(() => Slack.Replies.Any(r => r.Text.Contains("Acknowledged* by <@U0ALICE>")), "a thread reply says so");
        await Eventually.True(() => PagerDuty.Accepted.Any(e => e.Action == "acknowledge"), "PagerDuty acknowledge sent");
        Assert.Equal(PagerDuty.Triggers[0].DedupKey, PagerDuty.Accepted.Single(e => e.Action == "acknowledge").DedupKey);
        Assert.Empty(Ephemerals); // the message shows it
    }

    [Fact]
    public async Task Double_click_and_two_people_at_once_give_one_acknowledgement()
    {
        var id = await OpenAsync();
        await Eventually.True(() => PagerDuty.Triggers.Count == 1, "the page went to PagerDuty");

        await Task.WhenAll(ClickAsync("acknowledge", id, "U0ALICE"), ClickAsync("acknowledge", id, "U0ALICE"), ClickAsync("acknowledge", id, "U0BOB"));

        var actions = Actions(await Incident(id, byId: true)).ToList();
        Assert.Equal(3, actions.Count);
        var winner = Assert.Single(actions, a => a["result"]!.GetValue<string>() == "acknowledged");
        Assert.Equal(2, actions.Count(a => a["result"]!.GetValue<string>() == "already-acknowledged"));
        var who = winner["actor"]!.GetValue<string>();
        await Eventually.True(() => Ephemerals.Count == 2, "the two later clicks are told");
        Assert.All(Ephemerals, e => Assert.StartsWith($"Already acknowledged by <@{who}> at", e));
        await Eventually.True(() => PagerDuty.Accepted.Any(e => e.Action == "acknowledge"), "PagerDuty acknowledge sent");
        await Eventually.True(() => Slack.Replies.Any(r => r.Text.Contains("Acknowledged*")), "the thread reply");
        await Factory.SettledAsync();
        Assert.True(PagerDuty.Accepted.Count(e => e.Action == "acknowledge") == 1 && Slack.Replies.Count(r => r.Text.Contains("Acknowledged*")) == 1, "one acknowledgement everywhere");
    }

    [Fact]
    public async Task Slack_sending_the_same_click_again_is_one_action()
    {
        var id = await OpenAsync();
        var body = ClickBody("acknowledge", id);
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        Assert.Equal(HttpStatusCode.OK, (await Factory.CreateClient().SendAsync(SlackRequest(body, now))).StatusCode);
        // A retry is signed anew (another timestamp) but carries the same click.
        Assert.Equal(HttpStatusCode.OK, (await Factory.CreateClient().SendAsync(SlackRequest(body, now - 1))).StatusCode);

        Assert.Single(Actions(await Incident(id, byId: true)));
    }

    [Fact]
    public async Task A_click_after_the_incident_resolved_is_answered_already_resolved()
    {
        var id = await OpenAsync();
        await Send(Body("g1", Resolved("a1")));
        await Eventually.True(async () => (await Incident(id, byId: true))["state"]!.GetValue<string>() == "closed", "closed");

        await ClickAsync("acknowledge", id, "U0ALICE");

        await Eventually.True(() => Ephemerals.Count == 1, "the clicking user is told");
        Assert.Equal("Already resolved: nothing to do.", Ephemerals[0]);
        var incident = await Incident(id, byId: true);
        Assert.False(incident["handling"]!["acknowledged"]!.GetValue<bool>());
        Assert.Equal("already-resolved", Assert.Single(Actions(incident))["result"]!.GetValue<string>());
        Assert.DoesNotContain(PagerDuty.Accepted, e => e.Action == "acknowledge");
    }

    public static TheoryData<string> BadSignatures => ["missing", "stale", "wrong secret", "altered body", "replay"];

    [Theory]
    [MemberData(nameof(BadSignatures))]
    public async Task A_request_whose_signature_fails_is_refused_and_nothing_is_recorded(string fault)
    {
        var id = await OpenAsync();
        var body = ClickBody("acknowledge", id);
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var client = Factory.CreateClient();
        var request = fault switch
        {
            "missing" => SlackRequest(body, signed: false),
            "stale" => SlackRequest(body, now - 301, Sign(body, now - 301)),
            "wrong secret" => SlackRequest(body, now, Sign(body, now, "another-secret")),
            "altered body" => SlackRequest(body.Replace("U0ALICE", "U0MALLORY"), now, Sign(body, now)),
            _ => SlackRequest(body, now),
        };
        if (fault == "replay")
        {
            var copy = SlackRequest(body, now);
            Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(copy)).StatusCode);
        }

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(fault == "replay" ? 1 : 0, Actions(await Incident(id, byId: true)).Count());
        // The reason is on the metric: counted in ExactSignedRequestMetricsTests (the counters are process-wide).
        Assert.Contains("b25_alerting_signed_requests_rejected_total{source=\"slack\",reason=\"" + fault switch
        {
            "missing" => "missing", "stale" => "stale", "replay" => "replayed", _ => "bad_signature",
        } + "\"}", await Client.GetStringAsync("/metrics"));
    }

    [Fact]
    public async Task Bad_input_behind_a_good_signature_is_a_problem_naming_it()
    {
        var id = await OpenAsync();
        var client = Factory.CreateClient();

        using var notForm = await client.SendAsync(SlackRequest("payload=%7Bnot-json"));
        Assert.Equal(HttpStatusCode.BadRequest, notForm.StatusCode);
        Assert.Contains("payload", await notForm.Content.ReadAsStringAsync());

        using var badOption = await client.SendAsync(SlackRequest(ClickBody("silence", $"{id}|5m", select: true)));
        Assert.Equal(HttpStatusCode.BadRequest, badOption.StatusCode);
        Assert.Contains("1h", await badOption.Content.ReadAsStringAsync());

        using var unknown = await client.SendAsync(SlackRequest(ClickBody("acknowledge", "no-such-incident")));
        Assert.Equal(HttpStatusCode.OK, unknown.StatusCode);
        await Eventually.True(() => Ephemerals.Any(e => e.Contains("No incident 'no-such-incident'")), "the user is told");
        Assert.Empty(Actions(await Incident(id, byId: true)));
    }
}

/// <summary>Without a signing secret nobody can receive clicks: no endpoint, no buttons.</summary>
public sealed class SlackWithoutSigningSecretTests() : AckScenario(interactive: false)
{
    [Fact]
    public async Task The_endpoint_is_off_and_the_message_has_no_buttons()
    {
        await OpenAsync();

        using var response = await Factory.CreateClient().SendAsync(SlackRequest(ClickBody("acknowledge", "x")));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.DoesNotContain(Slack.Posts[0].Blocks!.OfType<JsonObject>(), b => b["type"]!.GetValue<string>() == "actions");
    }
}

/// <summary>An allow-list of Slack users: others are told, and nothing is recorded.</summary>
public sealed class SlackAllowListTests() : AckScenario(new() { ["Slack:AllowedUsers:0"] = "U0ALICE" })
{
    [Fact]
    public async Task Someone_not_on_the_list_is_told_and_nothing_happens()
    {
        var id = await OpenAsync();

        await ClickAsync("acknowledge", id, "U0MALLORY");

        await Eventually.True(() => Ephemerals.Count == 1, "told");
        Assert.Contains("not on the list", Ephemerals[0]);
        Assert.Empty(Actions(await Incident(id, byId: true)));
        await ClickAsync("acknowledge", id, "U0ALICE");
        Assert.Equal("acknowledged", Assert.Single(Actions(await Incident(id, byId: true)))["result"]!.GetValue<string>());
    }
}
