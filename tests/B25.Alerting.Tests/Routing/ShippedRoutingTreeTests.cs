using System.Text.RegularExpressions;
using B25.Alerting.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Tests.Routing;

/// <summary>
/// One routing tree: Alertmanager's (alertmanager/alertmanager.yml) picks the receiver, and the shipped routes
/// (appsettings.json) turn the receiver into targets. Labels decide only what the receiver cannot say (an
/// emergency stop is asked for alerts that carry action="emergency-stop" only).
/// </summary>
public sealed class ShippedRoutingTreeTests
{
    private const string Critical = "slack:#trading-alerts-critical";
    private const string Page = "pagerduty:default";
    private const string Mail = "email:default";
    private const string Stop = "risk-manager:risk-manager";

    /// <summary>What alertmanager.yml's header and alertmanager/README.md promise for each webhook receiver.</summary>
    private static readonly Dictionary<string, (Dictionary<string, string> Labels, string[] Targets)> Intended = new()
    {
        ["b25-emergency-stop"] = (new() { ["alertname"] = "HighDrawdown", ["action"] = "emergency-stop", ["severity"] = "critical" }, [Stop, Critical, Page, Mail]),
        ["b25-critical"] = (new() { ["alertname"] = "ServiceDown", ["severity"] = "critical" }, [Critical, Page, Mail]),
        ["b25-warning"] = (new() { ["alertname"] = "HighMemoryUsage", ["severity"] = "warning" }, ["slack:#trading-alerts"]),
        ["b25-info"] = (new() { ["alertname"] = "ConfigChanged", ["severity"] = "info" }, ["slack:#trading-info"]),
        ["b25-default"] = (new() { ["alertname"] = "Unlabelled" }, ["slack:#trading-alerts"]),
    };

    private static string RepoFile(params string[] parts)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "B25.Alerting.sln"))) dir = dir.Parent;
        return Path.Combine([dir!.FullName, .. parts]);
    }

    /// <summary>The receivers of alertmanager.yml whose notifications reach this service (its webhook).</summary>
    private static List<string> WebhookReceivers()
    {
        var yaml = File.ReadAllText(RepoFile("alertmanager", "alertmanager.yml"));
        var receivers = yaml[Regex.Match(yaml, @"(?m)^receivers:").Index..];
        return Regex.Split(receivers, @"(?m)^  - name: ").Skip(1)
            .Where(block => block.Contains("webhook_configs"))
            .Select(block => block.Split('\n')[0].Trim())
            .ToList();
    }

    private static Router ShippedRouter()
    {
        var config = new ConfigurationBuilder().AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json")).Build();
        return new Router(Options.Create(config.GetSection(RoutingOptions.Section).Get<RoutingOptions>()!));
    }

    [Fact]
    public void Every_webhook_receiver_of_alertmanager_has_an_intended_policy()
    {
        var receivers = WebhookReceivers();
        Assert.Contains("watchdog", receivers); // recorded, never paged: WatchdogTests
        Assert.Equal(Intended.Keys.Order(), receivers.Where(r => r != "watchdog").Order());
    }

    [Fact]
    public void Every_receiver_reaches_its_intended_targets()
    {
        var router = ShippedRouter();
        foreach (var (receiver, (labels, targets)) in Intended)
        {
            var reached = router.TargetsFor(receiver, labels).Select(t => $"{t.Channel}:{t.Target}").ToList();
            Assert.True(targets.Order().SequenceEqual(reached.Order()), $"{receiver}: reached [{string.Join(", ", reached)}], intended [{string.Join(", ", targets)}]");
        }
    }

    [Fact]
    public void The_receiver_decides_not_the_severity_label()
    {
        var router = ShippedRouter();
        foreach (var (receiver, (_, targets)) in Intended)
        {
            // Whatever severity an alert says, its receiver's policy applies; only the emergency stop reads a label.
            foreach (var severity in new[] { "critical", "warning", "info", "" })
            {
                var labels = new Dictionary<string, string> { ["alertname"] = "X", ["severity"] = severity };
                var reached = router.TargetsFor(receiver, labels).Select(t => $"{t.Channel}:{t.Target}").Order().ToList();
                Assert.Equal(targets.Where(t => t != Stop).Order(), reached);
            }
        }
    }

    [Fact]
    public void The_watchdog_alarm_is_raised_as_a_receiver_that_pages()
    {
        var alarmReceiver = new B25.Alerting.Webhooks.WatchdogOptions().AlarmReceiver;
        Assert.Contains(Page, Intended[alarmReceiver].Targets);
    }
}
