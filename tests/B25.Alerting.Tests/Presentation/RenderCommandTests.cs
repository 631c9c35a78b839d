using System.Diagnostics;
using System.Text.Json.Nodes;

namespace B25.Alerting.Tests.Presentation;

/// <summary>A template author sees the Slack blocks and the mail of a notification without a workspace or a relay.</summary>
public sealed class RenderCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("b25-render-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_notification_file_becomes_slack_blocks_and_a_mail_on_disk()
    {
        var file = Path.Combine(_dir, "notification.json");
        var alerts = new[] { "BTCUSDT", "ETHUSDT" }.Select(symbol => new JsonObject
        {
            ["status"] = "firing",
            ["labels"] = new JsonObject
            {
                ["alertname"] = "OrderBookStale", ["service"] = "market-data", ["symbol"] = symbol, ["severity"] = "critical", ["job"] = "market-data",
            },
            ["annotations"] = new JsonObject { ["summary"] = "Order book stale", ["runbook_url"] = "/runbooks/OrderBookStale" },
            ["startsAt"] = "2026-12-02T03:00:00Z",
            ["endsAt"] = "0001-01-01T00:00:00Z",
            ["generatorURL"] = "http://prometheus.test/graph?g0.expr=x",
            ["fingerprint"] = "fp-" + symbol,
        }).ToArray();
        await File.WriteAllTextAsync(file, new JsonObject
        {
            ["version"] = "4", ["groupKey"] = "{}:{alertname=\"OrderBookStale\"}", ["status"] = "firing", ["receiver"] = "b25-critical",
            ["groupLabels"] = new JsonObject { ["alertname"] = "OrderBookStale", ["service"] = "market-data" },
            ["commonLabels"] = new JsonObject { ["alertname"] = "OrderBookStale", ["service"] = "market-data", ["severity"] = "critical" },
            ["commonAnnotations"] = new JsonObject { ["summary"] = "Order book stale" },
            ["externalURL"] = "http://alertmanager.test:9093", ["truncatedAlerts"] = 0,
            ["alerts"] = new JsonArray(alerts),
        }.ToJsonString());

        var (exit, output) = await RenderAsync(file, Path.Combine(_dir, "out"), ("Service__PublicUrl", "https://alerting.b25.test"));

        Assert.True(exit == 0, output);
        var slack = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(_dir, "out", "slack.json")))!;
        Assert.Contains("OrderBookStale market-data (symbol BTCUSDT, ETHUSDT)", slack["text"]!.GetValue<string>());
        Assert.Contains("https://alerting.b25.test/runbooks/OrderBookStale", slack["blocks"]!.ToJsonString());
        var html = await File.ReadAllTextAsync(Path.Combine(_dir, "out", "email.html"));
        Assert.Contains("First action:", html);
        Assert.StartsWith("Subject: [FIRING:2] OrderBookStale market-data (symbol BTCUSDT, ETHUSDT) (critical)",
            await File.ReadAllTextAsync(Path.Combine(_dir, "out", "email.txt")));
    }

    [Fact]
    public async Task A_file_the_webhook_would_refuse_is_one_clear_line_and_exit_code_2()
    {
        var file = Path.Combine(_dir, "bad.json");
        await File.WriteAllTextAsync(file, """{"version":"4","receiver":"x"}""");

        var (exit, output) = await RenderAsync(file, Path.Combine(_dir, "out"));

        Assert.Equal(2, exit);
        Assert.Contains("is not a notification the webhook would accept", output);
        Assert.False(Directory.Exists(Path.Combine(_dir, "out")));
    }

    private static async Task<(int Exit, string Output)> RenderAsync(string file, string output, params (string Key, string Value)[] environment)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { Path.Combine(AppContext.BaseDirectory, "B25.Alerting.dll"), "render", file, output },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (key, value) in environment) info.Environment[key] = value;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
