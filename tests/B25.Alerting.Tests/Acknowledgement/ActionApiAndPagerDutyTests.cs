using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using B25.Alerting.Delivery.PagerDuty;
using B25.Alerting.Tests.Support;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.Acknowledgement;

/// <summary>The actions API: the same transitions, audit and answers as the buttons, behind Api:BearerToken.</summary>
public sealed class ActionApiTests : AckScenario
{
    [Fact]
    public async Task Acknowledge_through_the_api_is_the_same_transition()
    {
        var id = await OpenAsync();

        using var first = await Client.PostAsJsonAsync($"/api/incidents/{id}/acknowledge", new { by = "ops-script" });
        using var second = await Client.PostAsJsonAsync($"/api/incidents/{id}/acknowledge", new { by = "someone-else" });

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var answer = (await first.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("acknowledged", answer["result"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var later = (await second.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("already-acknowledged", later["result"]!.GetValue<string>());
        Assert.StartsWith("Already acknowledged by ops-script at", later["message"]!.GetValue<string>());
        var incident = await Incident(id, byId: true);
        Assert.Equal("api", incident["handling"]!["acknowledgedVia"]!.GetValue<string>());
        Assert.Equal(["acknowledged", "already-acknowledged"], Actions(incident).Select(a => a["result"]!.GetValue<string>()));
        await Eventually.True(() => Slack.Updates.Any(u => u.Blocks!.ToJsonString().Contains("ops-script")), "the Slack message shows it");
        await Eventually.True(() => PagerDuty.Accepted.Any(e => e.Action == "acknowledge"), "PagerDuty acknowledged");
    }

    [Fact]
    public async Task The_same_idempotency_key_is_one_action()
    {
        var id = await OpenAsync();
        async Task<JsonObject> Ack()
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/incidents/{id}/acknowledge");
            request.Headers.Add("Idempotency-Key", "k-1");
            using var response = await Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        }

        var first = await Ack();
        var again = await Ack();

        Assert.False(first["repeated"]!.GetValue<bool>());
        Assert.True(again["repeated"]!.GetValue<bool>());
        Assert.Equal("acknowledged", again["result"]!.GetValue<string>());
        Assert.Single(Actions(await Incident(id, byId: true)));
    }

    [Fact]
    public async Task Wrong_or_missing_token_unknown_incident_and_bad_input_are_problems()
    {
        var id = await OpenAsync();
        using var anonymous = Factory.CreateClient();

        using var noToken = await anonymous.PostAsync($"/api/incidents/{id}/acknowledge", null);
        Assert.Equal(HttpStatusCode.Unauthorized, noToken.StatusCode);
        Assert.Equal("application/problem+json", noToken.Content.Headers.ContentType?.MediaType);
        anonymous.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "wrong");
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsync($"/api/incidents/{id}/acknowledge", null)).StatusCode);

        using var unknown = await Client.PostAsync("/api/incidents/nope/acknowledge", null);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("nope", await unknown.Content.ReadAsStringAsync());

        using var badJson = await Client.PostAsync($"/api/incidents/{id}/acknowledge", AlertingFactory.Json("{\"by\":"));
        Assert.Equal(HttpStatusCode.BadRequest, badJson.StatusCode);
        using var badDuration = await Client.PostAsJsonAsync($"/api/incidents/{id}/silence", new { duration = "forever" });
        Assert.Equal(HttpStatusCode.BadRequest, badDuration.StatusCode);
        Assert.Contains("duration", await badDuration.Content.ReadAsStringAsync());

        Assert.Empty(Actions(await Incident(id, byId: true)));
    }

    [Fact]
    public async Task Acknowledge_after_resolve_is_a_conflict()
    {
        var id = await OpenAsync();
        await Send(Body("g1", Resolved("a1")));
        await Eventually.True(async () => (await Incident(id, byId: true))["state"]!.GetValue<string>() == "closed", "closed");

        using var response = await Client.PostAsync($"/api/incidents/{id}/acknowledge", null);

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("already-resolved", problem["result"]!.GetValue<string>());
    }

    [Fact]
    public async Task Silence_without_alertmanager_urls_says_so_and_changes_nothing()
    {
        var id = await OpenAsync();

        using var response = await Client.PostAsJsonAsync($"/api/incidents/{id}/silence", new { duration = "4h" });

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Contains("Alertmanager:Urls", await response.Content.ReadAsStringAsync());
        Assert.False((await Incident(id, byId: true))["handling"]!["silenced"]!.GetValue<bool>());
    }
}

/// <summary>Without Api:BearerToken the actions API is off: an open port must not let anyone silence pages.</summary>
public sealed class ActionApiOffTests() : AckScenario(new() { ["Api:BearerToken"] = "" })
{
    [Fact]
    public async Task Without_a_token_setting_the_api_answers_404_and_does_nothing()
    {
        var id = await OpenAsync();

        using var response = await Client.PostAsync($"/api/incidents/{id}/acknowledge", null);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("Api:BearerToken", await response.Content.ReadAsStringAsync());
        Assert.Empty(Actions(await Incident(id, byId: true)));
    }
}

/// <summary>PagerDuty in the loop: its acknowledgement is the same transition (source PagerDuty), never echoed back.</summary>
public sealed class PagerDutyWebhookTests : AckScenario
{
    private static string DedupKey(string groupKey) => PagerDutyEvents.DedupKey("b25-critical", groupKey);

    [Fact]
    public async Task An_acknowledgement_in_PagerDuty_edits_the_Slack_message_and_is_not_sent_back()
    {
        var id = await OpenAsync();
        await Eventually.True(() => PagerDuty.Triggers.Count == 1, "paged");
        Assert.Equal(DedupKey("g1"), PagerDuty.Triggers[0].DedupKey);

        using var response = await Factory.CreateClient().SendAsync(PagerDutyRequest(PagerDutyEvent("incident.acknowledged", DedupKey("g1"), "Jane Doe")));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var incident = await Incident(id, byId: true);
        Assert.Equal(("Jane Doe", "pagerduty"),
            (incident["handling"]!["acknowledgedBy"]!.GetValue<string>(), incident["handling"]!["acknowledgedVia"]!.GetValue<string>()));
        await Eventually.True(() => Slack.Updates.Any(u => u.Blocks!.ToJsonString().Contains("Acknowledged* by Jane Doe")), "the Slack message shows it");
        await Eventually.True(() => Slack.Replies.Any(r => r.Text.Contains("Acknowledged* by Jane Doe") && r.Text.Contains("PagerDuty")), "thread reply");
        await Factory.SettledAsync();
        Assert.True(PagerDuty.Calls.All(e => e.Action != "acknowledge"), "not echoed back to PagerDuty");
    }

    [Fact]
    public async Task The_same_event_twice_is_one_action_and_a_resolve_is_shown_but_does_not_close()
    {
        var id = await OpenAsync();
        var ack = PagerDutyEvent("incident.acknowledged", DedupKey("g1"), eventId: "evt-1");
        Assert.Equal(HttpStatusCode.OK, (await Factory.CreateClient().SendAsync(PagerDutyRequest(ack))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Factory.CreateClient().SendAsync(PagerDutyRequest(ack))).StatusCode);

        Assert.Equal(HttpStatusCode.OK,
            (await Factory.CreateClient().SendAsync(PagerDutyRequest(PagerDutyEvent("incident.resolved", DedupKey("g1"), "Jane Doe")))).StatusCode);

        var incident = await Incident(id, byId: true);
        Assert.Equal("open", incident["state"]!.GetValue<string>());
        Assert.Equal(["acknowledged", "shown"], Actions(incident).Select(a => a["result"]!.GetValue<string>()));
        await Eventually.True(() => Slack.Replies.Any(r => r.Text.Contains("Resolved in PagerDuty by Jane Doe")), "shown in the thread");
    }

    [Fact]
    public async Task Bad_signatures_are_refused_and_other_keys_ignored()
    {
        var id = await OpenAsync();
        var body = PagerDutyEvent("incident.acknowledged", DedupKey("g1"));
        var client = Factory.CreateClient();

        Assert.Equal(HttpStatusCode.Unauthorized, (await client.SendAsync(PagerDutyRequest(body, signature: ""))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.SendAsync(PagerDutyRequest(body, signature: "v1=00ff"))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.SendAsync(PagerDutyRequest(body.Replace("Jane", "Mallory"),
            signature: PagerDutyRequest(body).Headers.GetValues("X-PagerDuty-Signature").Single()))).StatusCode);
        Assert.Empty(Actions(await Incident(id, byId: true)));

        // Several signatures while the secret is rotated: one good one is enough.
        var good = PagerDutyRequest(body).Headers.GetValues("X-PagerDuty-Signature").Single();
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(PagerDutyRequest(body, signature: $"v1=deadbeef, {good}"))).StatusCode);
        Assert.Single(Actions(await Incident(id, byId: true)));

        // Another integration's incident, and an event type the service does not use: 200, nothing recorded.
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(PagerDutyRequest(PagerDutyEvent("incident.acknowledged", "someone-elses-key")))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(PagerDutyRequest(PagerDutyEvent("incident.annotated", DedupKey("g1"))))).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await client.SendAsync(PagerDutyRequest("{not json"))).StatusCode);
        Assert.Single(Actions(await Incident(id, byId: true)));
    }
}
