using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using B25.Alerting.RiskManager;
using B25.Alerting.Tests.Support;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.RiskManager;

/// <summary>The guard around emergency stops: dry run, a cap per window, and only for alerts whose route asks.</summary>
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

    [Fact]
    public async Task Dry_run_records_and_posts_what_would_be_requested()
    {
        using var client = Start(new() { ["RiskManager:DryRun"] = "true" });

        var response = await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Body("g-risk", Stop("r1"))));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        await Eventually.True(() => _slack.Replies.Any(r => r.Text.Contains("DRY RUN")), "dry-run note in the thread");
        var stop = Assert.Single(await Stops(client))!;
        Assert.Equal("dry-run", stop["status"]!.GetValue<string>());
        Assert.Contains("exchange=binance", _slack.Replies.First(r => r.Text.Contains("DRY RUN")).Text);
    }

    [Fact]
    public async Task Beyond_the_cap_nothing_is_requested_and_humans_are_paged()
    {
        using var client = Start(new() { ["RiskManager:MaxStopsPerWindow"] = "2" });

        await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Body("g-risk", Stop("r1", "binance"), Stop("r2", "bybit"), Stop("r3", "okx"))));

        await Eventually.True(async () => (await Stops(client)).Count == 3, "three stops recorded");
        var statuses = (await Stops(client)).Select(s => s!["status"]!.GetValue<string>()).Order().ToList();
        Assert.Equal(["requested", "requested", "suppressed"], statuses);
        await Eventually.True(() => _slack.Replies.Any(r => r.Text.Contains("<!here>") && r.Text.Contains("NOT requested")), "humans paged");
        Assert.Equal(2, _slack.Replies.Sum(r => r.Text.Split("requested from the risk manager").Length - 1));
    }

    [Fact]
    public async Task Alerts_without_the_action_label_ask_for_nothing()
    {
        using var client = Start([]);

        await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Body("g-plain", Firing("p1"))));

        await Eventually.True(() => _slack.Posts.Count == 1, "paged in Slack");
        await Task.Delay(500); // processing is done once the post went out; give the outbox a moment more
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
