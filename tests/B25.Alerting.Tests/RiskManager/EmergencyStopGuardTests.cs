using System.Net;
using System.Net.Http.Json;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using B25.Alerting.Contracts;
using B25.Alerting.RiskManager;
using B25.Alerting.Tests.Support;
using Dapper;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.RiskManager;

/// <summary>
/// The guard around emergency stops (dry run, a cap per window of firing time, only for alerts whose route asks) and how
/// they reach Slack: a routine stop is shown in the incident's own message, what needs people now pages the thread.
/// </summary>
public sealed class EmergencyStopGuardTests : IDisposable
{
    private readonly SlackStandIn _slack = new();
    private AlertingFactory? _factory;

    public void Dispose()
    {
        _factory?.Dispose();
        _slack.Dispose();
    }

    private HttpClient Start(Dictionary<string, string?> settings)
    {
        _factory = new AlertingFactory(_slack, settings);
        return _factory.Authorized();
    }

    private static Alert Stop(string fingerprint, string exchange = "binance") => Firing(fingerprint, "RiskLimitViolation") with
    {
        Labels = new()
        {
            ["alertname"] = "RiskLimitViolation", ["severity"] = "critical", ["action"] = "emergency-stop",
            ["exchange"] = exchange, ["service"] = "risk-manager", ["limit_type"] = "leverage",
        },
        Annotations = new() { ["summary"] = $"Leverage limit breached on {exchange}" },
    };

    private static async Task<JsonArray> Stops(HttpClient client) => (await client.GetFromJsonAsync<JsonArray>("/api/emergency-stops"))!;

    /// <summary>Every Slack and risk-manager delivery is done (sent, merged, skipped or failed): what Slack got is all it will get for now.</summary>
    private async Task Drained() =>
        await Eventually.True(async () =>
        {
            await using var connection = await _factory!.OpenStorageAsync();
            return await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM deliveries WHERE status = 'pending' AND channel IN ('slack', 'risk-manager')") == 0;
        }, "every delivery done", 20_000);

    private static string Shown(SlackCall call) =>
        call.Text + "\n" + call.Blocks?.ToJsonString(new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });

    /// <summary>The incident's top-level message as Slack shows it now: its latest post or edit.</summary>
    private string Message() => Shown(_slack.Calls.Last(c => c.ThreadTs is null && c.Answered));

    private static async Task<string> Status(HttpClient client, string commandId) =>
        (await Stops(client)).Single(s => s!["commandId"]!.GetValue<string>() == commandId)!["status"]!.GetValue<string>();

    [Fact]
    public async Task Dry_run_is_recorded_and_shown_in_the_incident_message_without_a_thread_message()
    {
        using var client = Start(new() { ["RiskManager:DryRun"] = "true" });

        var response = await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Body("g-risk", Stop("r1"))));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        await Eventually.True(async () => (await Stops(client)).Count == 1, "the dry run recorded");
        await Drained();
        var stop = Assert.Single(await Stops(client))!;
        Assert.Equal("dry-run", stop["status"]!.GetValue<string>());
        Assert.Contains("DRY RUN", Message());
        Assert.Contains("exchange=binance", Message());
        Assert.Empty(_slack.Replies);
    }

    [Fact]
    public async Task A_routine_stop_and_its_acknowledgement_cost_the_channel_no_message_beyond_the_page()
    {
        using var client = Start([]);

        await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Body("g-risk", Stop("r1"))));
        await Eventually.True(async () => (await Stops(client)).Count == 1 && await Status(client, CommandOf("r1")) == "requested", "the stop requested");
        await Drained();
        Assert.Contains("requested from the risk manager", Message());

        await _factory!.Services.GetRequiredService<IBus>().Publish(
            new EmergencyStopAcknowledged(Guid.Parse(CommandOf("r1")), "risk-manager", "halted exchange=binance", DateTimeOffset.UtcNow));
        await Eventually.True(async () => await Status(client, CommandOf("r1")) == "acknowledged", "the acknowledgement recorded");
        await Drained();

        Assert.Contains("*acknowledged* by risk-manager", Message());
        Assert.Contains("halted exchange=binance", Message());
        Assert.Single(_slack.Posts);
        Assert.Empty(_slack.Replies); // the stop and its answer are in the message itself: no thread message, nobody notified
        var stop = Assert.Single(await Stops(client))!;
        Assert.Equal("risk-manager", stop["answeredBy"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_rejected_stop_pages_the_thread()
    {
        using var client = Start([]);

        await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Body("g-risk", Stop("r1"))));
        await Eventually.True(async () => (await Stops(client)).Count == 1 && await Status(client, CommandOf("r1")) == "requested", "the stop requested");
        await _factory!.Services.GetRequiredService<IBus>().Publish(
            new EmergencyStopRejected(Guid.Parse(CommandOf("r1")), "risk-manager", "no open positions on binance", DateTimeOffset.UtcNow));
        await Eventually.True(async () => await Status(client, CommandOf("r1")) == "rejected", "the rejection recorded");
        await Drained();

        var page = Assert.Single(_slack.Replies);
        Assert.Contains("<!here>", page.Text);
        Assert.Contains("rejected", page.Text);
        Assert.Contains("*rejected* by risk-manager", Message());
    }

    [Fact]
    public async Task An_unanswered_stop_still_pages_here()
    {
        using var client = Start(new() { ["RiskManager:AnswerTimeout"] = "00:00:01" });

        await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Body("g-risk", Stop("r1"))));

        // The escalation monitor looks every 5 s.
        await Eventually.True(() => _slack.Replies.Any(r => r.Text.Contains("<!here>") && r.Text.Contains("has not answered")),
            "the channel paged about the missing answer", 30_000);
        await Drained();
        Assert.Single(_slack.Replies);
        Assert.Contains("no answer from the risk manager in time", Message());
    }

    [Fact]
    public async Task Beyond_the_cap_nothing_is_requested_and_humans_are_paged()
    {
        using var client = Start(new() { ["RiskManager:MaxStopsPerWindow"] = "2" });

        // Three alerts that fired together: a burst.
        await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Body("g-risk", Stop("r1", "binance"), Stop("r2", "bybit"), Stop("r3", "okx"))));

        await Eventually.True(async () => (await Stops(client)).Count == 3, "three stops recorded");
        await Eventually.True(async () => (await Stops(client)).All(s => s!["status"]!.GetValue<string>() != "requesting"), "every stop decided");
        await Drained();
        var statuses = (await Stops(client)).Select(s => s!["status"]!.GetValue<string>()).Order().ToList();
        Assert.Equal(["requested", "requested", "suppressed"], statuses);
        // Only what needs people now is a thread message: the suppressed stop, with @here.
        var page = Assert.Single(_slack.Replies);
        Assert.Contains("<!here>", page.Text);
        Assert.Contains("NOT requested", page.Text);
        Assert.Equal(2, Message().Split("requested from the risk manager").Length - 1);
        Assert.Contains("*NOT requested*", Message());
    }

    [Fact]
    public async Task A_backlog_of_stops_whose_alerts_fired_over_an_hour_is_requested_when_released_together()
    {
        using var client = Start(new() { ["RiskManager:MaxStopsPerWindow"] = "2" });

        // Six alerts that fired 12 minutes apart (an hour's worth, e.g. held back by an outage), arriving in one notification.
        var alerts = Enumerable.Range(0, 6).Select(i => Stop($"b{i}", $"x{i}") with { StartsAt = T0.AddMinutes(12 * i) }).ToArray();
        await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Body("g-backlog", alerts)));

        await Eventually.True(async () => (await Stops(client)).Count == 6, "six stops recorded");
        await Eventually.True(async () => (await Stops(client)).All(s => s!["status"]!.GetValue<string>() == "requested"), "all six requested");
        await Drained();
        Assert.Empty(_slack.Replies);
        // Each counted where its alert fired.
        Assert.Equal(alerts.Select(a => a.StartsAt!.Value).Order(),
            (await Stops(client)).Select(s => s!["firedAt"]!.GetValue<DateTimeOffset>()).Order());
    }

    private static string CommandOf(string fingerprint) => EmergencyStopCommand.CommandIdFor(fingerprint, T0).ToString();

    [Fact]
    public async Task Alerts_without_the_action_label_ask_for_nothing()
    {
        using var client = Start([]);

        await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Body("g-plain", Firing("p1"))));

        await Eventually.True(() => _slack.Posts.Count == 1, "paged in Slack");
        await Drained(); // the stop would have been planned with the post: nothing left to send means nothing asked
        Assert.Empty(await Stops(client));
    }

    [Fact]
    public void Command_id_is_the_same_for_the_same_occurrence_and_differs_otherwise()
    {
        var a = EmergencyStopCommand.CommandIdFor("fp1", T0);
        Assert.Equal(a, EmergencyStopCommand.CommandIdFor("fp1", T0.ToOffset(TimeSpan.FromHours(2))));
        Assert.NotEqual(a, EmergencyStopCommand.CommandIdFor("fp1", T0.AddSeconds(1)));
        Assert.NotEqual(a, EmergencyStopCommand.CommandIdFor("fp2", T0));
    }
}
