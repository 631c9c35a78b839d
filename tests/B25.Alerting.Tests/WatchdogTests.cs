using System.Net.Http.Json;
using System.Text.Json.Nodes;
using B25.Alerting.Tests.Support;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests;

/// <summary>The dead-man's switch: the Watchdog's arrivals are recorded, and their absence pages through the service's own pipeline.</summary>
public sealed class WatchdogTests : IDisposable
{
    private readonly SlackStandIn _slack = new();
    private readonly AlertingFactory _factory;
    private readonly HttpClient _client;

    public WatchdogTests()
    {
        _factory = new AlertingFactory(_slack, new Dictionary<string, string?>
        {
            ["Watchdog:MissingAfter"] = "00:00:02",
            ["Watchdog:CheckEvery"] = "00:00:00.200",
        });
        _client = _factory.Authorized();
    }

    private static string Watchdog() => Build("{}:{alertname=\"Watchdog\"}", "watchdog", Firing("wd", alertname: "Watchdog", severity: "none")).ToJsonString();

    private async Task<JsonArray> Incidents(string state) =>
        (await _client.GetFromJsonAsync<JsonArray>($"/api/incidents?state={state}"))!;

    [Fact]
    public async Task A_watchdog_is_recorded_not_paged_and_its_absence_raises_and_its_return_resolves_the_alarm()
    {
        var answer = await _client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Watchdog()));
        Assert.Equal("watchdog", (await answer.Content.ReadFromJsonAsync<JsonObject>())!["status"]!.GetValue<string>());
        Assert.Empty(await Incidents("open"));
        Assert.True(await MetricsText.ReadAsync(_client, "b25_alerting_watchdog_last_seen_timestamp_seconds") > 0);

        // Nothing arrives for longer than MissingAfter: the alarm pages as a critical incident.
        await Eventually.True(() => _slack.Posts.Count == 1, "the alarm is posted", timeoutMs: 20_000);
        Assert.Equal("#trading-alerts-critical", _slack.Posts[0].Channel);
        Assert.Contains("AlertingWatchdogMissing", _slack.Posts[0].Text);
        var open = Assert.Single(await Incidents("open"));
        Assert.Equal("AlertingWatchdogMissing", open!["alerts"]![0]!["labels"]!["alertname"]!.GetValue<string>());
        Assert.Equal(1, await MetricsText.ReadAsync(_client, "b25_alerting_watchdog_missing"));
        await Eventually.Stays(() => _slack.Posts.Count == 1, "raised once, however many checks run", forMs: 1_500);

        // The Watchdog is back, and keeps coming as Alertmanager repeats it (here every 200 ms, well inside MissingAfter: a
        // single return would let the alarm be raised again, rightly, once MissingAfter passed on a slow machine). The alarm
        // resolves, its message says so, and it is not raised again.
        using var stop = new CancellationTokenSource();
        var repeating = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var sent = await _client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Watchdog()), CancellationToken.None);
                try { await Task.Delay(200, stop.Token); } catch (OperationCanceledException) { }
            }
        });
        await Eventually.True(async () => (await Incidents("open")).Count == 0, "the alarm's incident closes", timeoutMs: 20_000);
        await Eventually.True(() => _slack.Updates.Any(u => u.Text.Contains("RESOLVED")), "the message shows resolved");
        Assert.Equal(0, await MetricsText.ReadAsync(_client, "b25_alerting_watchdog_missing"));
        await Eventually.Stays(() => _slack.Posts.Count == 1, "not raised again while the Watchdog keeps coming", forMs: 3_000);
        await stop.CancelAsync();
        await repeating;
    }

    [Fact]
    public async Task Without_any_watchdog_ever_nothing_is_raised()
    {
        await Task.Delay(100);
        await Eventually.Stays(() => _slack.Calls.Count == 0, "no alarm before the first Watchdog", forMs: 3_000);
        Assert.Empty(await Incidents("open"));
    }

    public void Dispose()
    {
        _client.Dispose();
        _factory.Dispose();
        _slack.Dispose();
    }
}
