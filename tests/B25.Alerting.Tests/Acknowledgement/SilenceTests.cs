using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using B25.Alerting.Incidents;
using B25.Alerting.Silences;
using B25.Alerting.Storage;
using B25.Alerting.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.Acknowledgement;

/// <summary>
/// Silences on a real Alertmanager: the click creates one (the group's labels as equality matchers, the Slack user as
/// createdBy, a comment naming the incident), Alertmanager stops notifying for the group, unsilence expires it. The
/// first Alertmanager listed is down: the next one takes it.
/// </summary>
public sealed class SilenceTests(AlertmanagerServer alertmanager) : AckScenario(new()
{
    ["Alertmanager:Urls:0"] = $"http://127.0.0.1:{ServiceProcess.FreePort()}",
    ["Alertmanager:Urls:1"] = alertmanager.Url,
    ["Alertmanager:RequestTimeout"] = "00:00:02",
}), IClassFixture<AlertmanagerServer>
{
    private static JsonObject? Ours(JsonArray silences, string incidentId) =>
        silences.OfType<JsonObject>().FirstOrDefault(s => s["comment"]!.GetValue<string>().Contains(incidentId));

    [Fact]
    public async Task A_click_silences_the_group_in_Alertmanager_until_unsilenced()
    {
        var labels = new Dictionary<string, string> { ["alertname"] = "SilenceMe", ["service"] = "order-execution", ["severity"] = "critical" };
        await alertmanager.FireAsync(labels);
        await Eventually.True(() => alertmanager.NotificationsFor("SilenceMe") >= 1, "Alertmanager notifies for the group", 20_000);
        await Send(Body("g-silence", Firing("s1", "SilenceMe")));
        await Eventually.True(() => Slack.Posts.Count == 1, "posted");
        var id = (await Incident())["id"]!.GetValue<string>();
        var before = DateTimeOffset.UtcNow;

        await ClickAsync("silence", $"{id}|4h", "U0ALICE", select: true);

        JsonObject? silence = null;
        await Eventually.True(async () => (silence = Ours(await alertmanager.SilencesAsync(), id)) is not null, "the silence is listed");
        Assert.Equal("active", silence!["status"]!["state"]!.GetValue<string>());
        Assert.Equal("slack:U0ALICE", silence["createdBy"]!.GetValue<string>());
        var matcher = Assert.Single(silence["matchers"]!.AsArray())!;
        Assert.Equal(("alertname", "SilenceMe", false, true),
            (matcher["name"]!.GetValue<string>(), matcher["value"]!.GetValue<string>(), matcher["isRegex"]!.GetValue<bool>(), matcher["isEqual"]!.GetValue<bool>()));
        var endsAt = DateTimeOffset.Parse(silence["endsAt"]!.GetValue<string>());
        Assert.InRange(endsAt, before.AddHours(4).AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(4).AddMinutes(1));
        var silenceId = silence["id"]!.GetValue<string>();

        // Alertmanager holds the alert back: suppressed by the silence, and no further notification.
        await Eventually.True(async () => (await alertmanager.AlertsAsync()).OfType<JsonObject>().Any(a =>
            a["labels"]!["alertname"]!.GetValue<string>() == "SilenceMe" && a["status"]!["state"]!.GetValue<string>() == "suppressed"
            && a["status"]!["silencedBy"]!.AsArray().Any(s => s!.GetValue<string>() == silenceId)), "the alert is suppressed by the silence");
        var notified = alertmanager.NotificationsFor("SilenceMe");
        await Eventually.Stays(() => alertmanager.NotificationsFor("SilenceMe") == notified, "no notification while silenced (repeat_interval is 2 s)", 4_000);

        var incident = await Incident(id, byId: true);
        Assert.True(incident["handling"]!["silenced"]!.GetValue<bool>());
        Assert.Equal(silenceId, incident["handling"]!["silenceId"]!.GetValue<string>());
        Assert.Equal("silenced", Assert.Single(Actions(incident))["result"]!.GetValue<string>());
        await Eventually.True(() => Slack.Updates.Any(u => u.Blocks!.ToJsonString().Contains("Silenced until")
                                                          && u.Blocks!.ToJsonString().Contains("\"unsilence\"")), "the message shows it, with unsilence");

        await ClickAsync("unsilence", id, "U0BOB");

        await Eventually.True(async () => Ours(await alertmanager.SilencesAsync(), id)!["status"]!["state"]!.GetValue<string>() == "expired",
            "the silence is expired");
        await Eventually.True(() => alertmanager.NotificationsFor("SilenceMe") > notified, "Alertmanager notifies for the group again", 20_000);
        incident = await Incident(id, byId: true);
        Assert.False(incident["handling"]!["silenced"]!.GetValue<bool>());
        Assert.Equal(["silenced", "unsilenced"], Actions(incident).Select(a => a["result"]!.GetValue<string>()));
        await Eventually.True(() => Slack.Replies.Any(r => r.Text.Contains("Unsilenced* by <@U0BOB>")), "the thread says so");
    }

    [Fact]
    public async Task A_silence_left_pending_by_a_process_that_stopped_is_adopted_or_recorded_as_failed()
    {
        await Send(Body("g-crash", Firing("c1", "CrashedMidway")));
        await Send(Body("g-crash2", Firing("c2", "CrashedEarly")));
        await Eventually.True(() => Slack.Posts.Count == 2, "posted");
        var incidents = (await Client.GetFromJsonAsync<JsonArray>("/api/incidents"))!.Select(i => i!.AsObject()).ToList();
        string IdOf(string name) => incidents.Single(i => i["groupLabels"]!["alertname"]!.GetValue<string>() == name)["id"]!.GetValue<string>();
        var (midway, early) = (IdOf("CrashedMidway"), IdOf("CrashedEarly"));
        var store = Factory.Services.GetRequiredService<IIncidentActionStore>();
        var actions = Factory.Services.GetRequiredService<IncidentActions>();
        var silences = Factory.Services.GetRequiredService<IAlertmanagerSilences>();
        var then = DateTimeOffset.UtcNow.AddMinutes(-3).ToUnixTimeMilliseconds();
        // What a process leaves when it stops after recording the click: a pending action; one of them also got as far as Alertmanager.
        var (row1, _) = (await store.RecordAsync(new NewAction(midway, "slack:U0ALICE:crash:1", "silence", "U0ALICE", "slack", then),
            _ => new ActionDecision(ActionResults.Pending), CancellationToken.None))!.Value;
        await store.RecordAsync(new NewAction(early, "slack:U0ALICE:crash:2", "silence", "U0ALICE", "slack", then),
            _ => new ActionDecision(ActionResults.Pending), CancellationToken.None);
        var created = await silences.CreateAsync(new Dictionary<string, string> { ["alertname"] = "CrashedMidway" }, DateTimeOffset.UtcNow,
            DateTimeOffset.UtcNow.AddHours(4), "slack:U0ALICE", $"Silenced from B25.Alerting (Slack): incident {midway} [b25-action:{row1.Id}:{midway}]",
            CancellationToken.None);
        Assert.True(created.Ok, created.Error);

        foreach (var row in await store.PendingBeforeAsync(DateTimeOffset.UtcNow.AddMinutes(-2).ToUnixTimeMilliseconds(), CancellationToken.None))
            await actions.RecoverAsync(row, CancellationToken.None);

        var adopted = await Incident(midway, byId: true);
        Assert.Equal(created.SilenceId, adopted["handling"]!["silenceId"]!.GetValue<string>());
        Assert.Equal("silenced", Assert.Single(Actions(adopted))["result"]!.GetValue<string>());
        var failed = await Incident(early, byId: true);
        Assert.False(failed["handling"]!["silenced"]!.GetValue<bool>());
        Assert.Contains("interrupted before Alertmanager took the silence", Assert.Single(Actions(failed))["detail"]!.GetValue<string>());
        Assert.Empty(await store.PendingBeforeAsync(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), CancellationToken.None));
    }

    [Fact]
    public async Task Silence_through_the_api_waits_for_Alertmanager()
    {
        await Send(Body("g-api", Firing("s2", "SilenceByApi")));
        await Eventually.True(() => Slack.Posts.Count == 1, "posted");
        var id = (await Incident())["id"]!.GetValue<string>();

        using var response = await Client.PostAsJsonAsync($"/api/incidents/{id}/silence", new { by = "ops-script", duration = "1h" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("silenced", (await response.Content.ReadFromJsonAsync<JsonObject>())!["result"]!.GetValue<string>());
        Assert.Equal("api:ops-script", Ours(await alertmanager.SilencesAsync(), id)!["createdBy"]!.GetValue<string>());
        using var again = await Client.PostAsJsonAsync($"/api/incidents/{id}/silence", new { duration = "4h" });
        Assert.Equal("already-silenced", (await again.Content.ReadFromJsonAsync<JsonObject>())!["result"]!.GetValue<string>());
    }
}

/// <summary>Alertmanager down during a silence: the user is told, and nothing is half done.</summary>
public sealed class SilenceWithAlertmanagerDownTests() : AckScenario(new()
{
    ["Alertmanager:Urls:0"] = $"http://127.0.0.1:{ServiceProcess.FreePort()}",
    ["Alertmanager:Urls:1"] = $"http://127.0.0.1:{ServiceProcess.FreePort()}",
    ["Alertmanager:RequestTimeout"] = "00:00:02",
})
{
    [Fact]
    public async Task The_user_is_told_and_the_incident_is_not_silenced()
    {
        var id = await OpenAsync();

        await ClickAsync("silence", $"{id}|1h", "U0ALICE", select: true);

        await Eventually.True(() => Ephemerals.Count == 1, "the clicking user is told");
        Assert.StartsWith("Not done: Alertmanager did not take the silence", Ephemerals[0]);
        var incident = await Incident(id, byId: true);
        Assert.False(incident["handling"]!["silenced"]!.GetValue<bool>());
        var audit = Assert.Single(Actions(incident));
        Assert.Equal("failed", audit["result"]!.GetValue<string>());
        Assert.DoesNotContain(Slack.Updates, u => u.Blocks!.ToJsonString().Contains("Silenced until"));
        Assert.DoesNotContain(Slack.Replies, r => r.Text.Contains("Silenced"));

        using var api = await Client.PostAsJsonAsync($"/api/incidents/{id}/silence", new { duration = "1h" });
        Assert.Equal(HttpStatusCode.BadGateway, api.StatusCode);
        Assert.Contains("Alertmanager did not take the silence", await api.Content.ReadAsStringAsync());
    }
}
