using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using B25.EndToEnd.Tests.Stack;
using Xunit.Abstractions;

namespace B25.EndToEnd.Tests;

/// <summary>
/// Fault to page to resolution on real binaries: simulator -> Prometheus (the repository's rules)
/// -> Alertmanager (the repository's routes) -> B25.Alerting -> Slack stand-in. Alertmanager also
/// posts each notification straight to the stand-in (slack_configs on the same receivers): the
/// difference between the two arrival times is what B25.Alerting adds to a page.
/// </summary>
public sealed class AlertPathTests(ITestOutputHelper output)
{
    /// <summary>Generous: a page is expected in about 5 s (1 s scrape and evaluation, `for` / 30, 1 s grouping).</summary>
    private static readonly TimeSpan PageTimeout = TimeSpan.FromSeconds(90);

    private const string Critical = "#trading-alerts-critical";
    private const string Warning = "#trading-alerts";

    /// <summary>How many times the page-and-resolve rounds run: 1 in CI, more for the figures of docs/benchmarks.md.</summary>
    private static int Repeats =>
        int.TryParse(Environment.GetEnvironmentVariable("B25_E2E_REPEAT"), out var n) ? Math.Clamp(n, 1, 10) : 1;

    [Fact]
    public async Task A_fault_pages_the_right_channel_and_clearing_it_resolves_the_message()
    {
        var run = Stopwatch.StartNew();
        await using var stack = await LocalStack.StartAsync(output.WriteLine);
        try
        {
            await Healthy_stack_is_silent_and_passes_the_smoke_suite(stack);

            // Each repetition pages and resolves again: a later firing of the same group is a new incident.
            var rounds = new List<Round>();
            for (var repeat = 0; repeat < Repeats; repeat++)
            {
                foreach (var (service, fault, alert) in new[]
                {
                    ("risk-manager", "service-down", "ServiceDown"),
                    ("order-execution", "service-down", "ServiceDown"),
                    ("market-data", "websocket-disconnect", "WebSocketDisconnected"),
                })
                {
                    rounds.Add(await PageAndResolveAsync(stack, service, fault, alert, Critical));
                }
            }

            // Rules that look back minutes resolve minutes after the fault is cleared: these rounds end with the page.
            // The emergency-stop route (action="emergency-stop", group_wait 0s):
            rounds.Add(await PageAsync(stack, "risk-manager", "risk-violation", "RiskLimitViolation", Critical));

            // A warning goes to the other channel (p95 over 5m crosses 1 s once 5% of the window is slow).
            rounds.Add(await PageAsync(stack, "order-execution", "latency-spike", "SlowResponseTime", Warning));

            var report = BenchmarkReport.Render(rounds, run.Elapsed);
            output.WriteLine(report);
            BenchmarkReport.WriteIfAsked(report, output.WriteLine);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new Xunit.Sdk.XunitException($"{ex.Message}\n\n{stack.Diagnostics()}");
        }
    }

    private async Task Healthy_stack_is_silent_and_passes_the_smoke_suite(LocalStack stack)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var up = await stack.QueryAsync("up");
            var healthy = up.EnumerateArray().Count(s => s.GetProperty("value")[1].GetString() == "1");
            if (healthy == stack.Jobs.Count)
            {
                break;
            }

            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"only {healthy} of {stack.Jobs.Count} targets up after 30 s: {up}");
            await Task.Delay(250);
        }

        // Let every rule see a few evaluations over real data (rates need two scrapes; scaled `for` is at most 2 min / 30).
        await Task.Delay(TimeSpan.FromSeconds(6));
        // The Watchdog fires all the time (the dead-man's switch): that is health, not an alert.
        var firing = await stack.QueryAsync("ALERTS{alertstate=\"firing\",alert_role!=\"watchdog\"}");
        Assert.True(firing.GetArrayLength() == 0, $"a healthy stack must fire no alert, got: {firing}");
        var watchdog = await stack.QueryAsync("ALERTS{alertstate=\"firing\",alertname=\"Watchdog\"}");
        Assert.True(watchdog.GetArrayLength() == 1, $"the Watchdog must fire on a healthy stack, got: {watchdog}");
        // Alertmanager's own copy of the Watchdog (the baseline slack_configs on every receiver) is the only message;
        // the service's readiness check asks Slack's auth.test, which posts nothing. Nothing else reached the stand-in.
        Assert.Empty(stack.Slack.Calls);
        Assert.Empty(stack.Slack.Reads);
        Assert.DoesNotContain(stack.Slack.WebhookPosts, p => p.Name != "watchdog");
        Assert.Empty(stack.Slack.Server.LogEntries);

        // Pending is not a page, but on a healthy stack it says a rule is close to a false alarm (or a scrape timed out under load).
        var pending = await stack.QueryAsync("ALERTS{alertstate=\"pending\",alert_role!=\"watchdog\"}");
        output.WriteLine($"healthy: {stack.Jobs.Count} targets up, no alert firing after {clock.Elapsed.TotalSeconds:0.0} s" +
            (pending.GetArrayLength() == 0 ? ", none pending" : $"; pending: {pending}"));

        var smoke = await RunSmokeAsync(stack);
        Assert.True(smoke.ExitCode == 0, $"tests/smoke/stack-smoke.sh failed:\n{smoke.Output}");
        output.WriteLine(smoke.Output);
    }

    private async Task<Round> PageAndResolveAsync(LocalStack stack, string service, string fault, string alert, string channel)
    {
        var round = await PageAsync(stack, service, fault, alert, channel);

        var (fromCalls, fromPosts) = (stack.Slack.Calls.Count, stack.Slack.WebhookPosts.Count);
        var cleared = Stopwatch.GetTimestamp();
        await stack.SetFaultAsync(service, fault, on: false);
        var resolved = await stack.Slack.WaitForCallAsync(
            c => c.Method == "chat.update" && c.MessageTs == round.PageTs && c.Text.Contains("RESOLVED", StringComparison.OrdinalIgnoreCase),
            PageTimeout, $"chat.update marking the {alert} page ({round.PageTs}) RESOLVED", skip: fromCalls);
        var amResolved = await stack.Slack.WaitForWebhookPostAsync(
            p => p.Body.Contains("[RESOLVED]", StringComparison.Ordinal) && p.Body.Contains(alert, StringComparison.Ordinal) && p.Body.Contains(service, StringComparison.Ordinal),
            PageTimeout, $"Alertmanager's own resolved message for {alert} {service}", skip: fromPosts);
        Assert.Equal("Bearer " + LocalStack.SlackBotToken, resolved.Authorization);

        round = round with
        {
            ResolveAlerting = Seconds(cleared, resolved.ReceivedAt),
            ResolveAlertmanager = Seconds(cleared, amResolved.ReceivedAt),
        };
        output.WriteLine($"{service} {fault}: resolved in {round.ResolveAlerting:0.00} s via B25.Alerting, {round.ResolveAlertmanager:0.00} s via Alertmanager slack_configs");

        // Let the group's last notification go out before the next round, so each page is a fresh incident.
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        return round;
    }

    private async Task<Round> PageAsync(LocalStack stack, string service, string fault, string alert, string channel)
    {
        var (fromCalls, fromPosts) = (stack.Slack.Calls.Count, stack.Slack.WebhookPosts.Count);
        var injected = Stopwatch.GetTimestamp();
        await stack.SetFaultAsync(service, fault, on: true);

        var page = await stack.Slack.WaitForCallAsync(
            c => c.Method == "chat.postMessage" && c.ThreadTs is null && c.Raw.Contains(alert, StringComparison.Ordinal) && c.Raw.Contains(service, StringComparison.Ordinal),
            PageTimeout, $"chat.postMessage paging {alert} for {service}", skip: fromCalls);
        var amPage = await stack.Slack.WaitForWebhookPostAsync(
            p => p.Body.Contains("[FIRING", StringComparison.Ordinal) && p.Body.Contains(alert, StringComparison.Ordinal) && p.Body.Contains(service, StringComparison.Ordinal),
            PageTimeout, $"Alertmanager's own slack message for {alert} {service}", skip: fromPosts);

        Assert.Equal(channel, page.Channel);
        Assert.Equal("Bearer " + LocalStack.SlackBotToken, page.Authorization);
        Assert.Contains("FIRING", page.Text, StringComparison.OrdinalIgnoreCase);
        // The first line carries the value of the rule's series, queried from the real Prometheus, and the rule's threshold.
        if (alert is "ServiceDown")
        {
            Assert.Contains("now 0 (fires == 0)", page.Text);
            // The value line: a sparkline of the real series (up 1 before the fault, 0 since), its range and the threshold.
            var valueLine = Regex.Match(string.Join("\n", Strings(page.Body)), @"[\u2581-\u2588 ·]*[\u2581-\u2588][\u2581-\u2588 ·]* · now 0 · min 0 · max 1 · fires == 0");
            Assert.True(valueLine.Success, $"no value line with a sparkline in the page: {page.Raw}");
            Assert.Contains('\u2588', valueLine.Value); // the highest block: up was 1 in the window
            Assert.Contains('\u2581', valueLine.Value); // the lowest: up is 0 now
        }
        if (alert is "RiskLimitViolation") Assert.Contains("(fires &gt; 0)", page.Text);

        var round = new Round(service, fault, alert, page.Ts!, Seconds(injected, page.ReceivedAt), Seconds(injected, amPage.ReceivedAt), null, null,
            amPage.Name, page.Channel);
        output.WriteLine($"{service} {fault}: {alert} paged {page.Channel} in {round.PageAlerting:0.00} s via B25.Alerting, " +
            $"{round.PageAlertmanager:0.00} s via Alertmanager slack_configs (receiver {round.Receiver})");
        return round;
    }

    /// <summary>Every string in a JSON document (Slack's blocks nest them at several depths).</summary>
    private static IEnumerable<string> Strings(JsonNode? node) => node switch
    {
        JsonObject o => o.SelectMany(p => Strings(p.Value)),
        JsonArray a => a.SelectMany(Strings),
        JsonValue v when v.TryGetValue<string>(out var s) => [s],
        _ => [],
    };

    private static double Seconds(long from, long to) => (to - from) / (double)Stopwatch.Frequency;

    private static async Task<(int ExitCode, string Output)> RunSmokeAsync(LocalStack stack)
    {
        var info = new ProcessStartInfo("bash", [Repository.PathOf("tests", "smoke", "stack-smoke.sh")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Repository.Root,
        };
        info.Environment["PROMETHEUS_URL"] = stack.PrometheusUrl;
        info.Environment["ALERTMANAGER_URL"] = stack.AlertmanagerUrl;
        info.Environment["ALERTING_URL"] = stack.AlertingUrl;
        info.Environment["EXPECT_NO_FIRING"] = "1";
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}

/// <summary>One fault injected and (when cleared) resolved, with the arrival times at the stand-in.</summary>
internal sealed record Round(string Service, string Fault, string Alert, string PageTs, double PageAlerting, double PageAlertmanager,
    double? ResolveAlerting, double? ResolveAlertmanager, string Receiver, string Channel)
{
    public double AddedLatency => PageAlerting - PageAlertmanager;
}
