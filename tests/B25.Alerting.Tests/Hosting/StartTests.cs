using System.Net;
using System.Net.Sockets;
using B25.Alerting.Tests.Support;
using Microsoft.Data.Sqlite;

namespace B25.Alerting.Tests.Hosting;

/// <summary>The service as an operator starts it: standard listen settings, one-line refusals, one summary line.</summary>
public sealed class StartTests : IDisposable
{
    private readonly SlackStandIn _slack = new();
    private readonly string _db = Path.Combine(Path.GetTempPath(), $"b25-start-{Guid.NewGuid():N}.db");

    public void Dispose()
    {
        _slack.Dispose();
        SqliteConnection.ClearAllPools();
        foreach (var suffix in new[] { "", "-wal", "-shm", ".lock" }) File.Delete(_db + suffix);
    }

    private static string[] Lines(string output) => output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [Theory]
    [InlineData("Bus__Transport", "Kafka", "Bus:Transport=Kafka: expected InMemory or RabbitMq")]
    [InlineData("Slack__RequestTimeout", "10s", "Slack:RequestTimeout=10s: not a TimeSpan")]
    [InlineData("Smtp__From", "notanaddress", "Smtp:From=notanaddress: expected a mail address")]
    [InlineData("Service__PublicUrl", "alerting.b25.example", "Service:PublicUrl")]
    public async Task A_bad_setting_ends_in_one_line_and_exit_code_1(string key, string value, string expected)
    {
        var environment = ServiceProcess.Settings(_db, _slack, new Dictionary<string, string>
        {
            [key] = value,
            ["Smtp__Host"] = "127.0.0.1",
            ["Smtp__From"] = key == "Smtp__From" ? value : "alerts@b25.example",
            ["Smtp__To__0"] = "oncall@b25.example",
        });
        var (exitCode, output) = await ServiceProcess.RunToExitAsync(environment);

        Assert.Equal(1, exitCode);
        var line = Assert.Single(Lines(output), l => l.Contains("Settings: "));
        Assert.Contains(expected, line);
        Assert.Contains("not starting", line);
        Assert.DoesNotContain("   at ", output);
        Assert.DoesNotContain("Unhandled exception", output);
        Assert.False(File.Exists(_db), "a refused start must not create the database");
    }

    [Fact]
    public async Task Port_in_use_ends_in_one_line_before_storage_is_touched()
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var url = $"http://127.0.0.1:{((IPEndPoint)holder.LocalEndpoint).Port}";

        var (exitCode, output) = await ServiceProcess.RunToExitAsync(ServiceProcess.Settings(_db, _slack), urls: url);

        Assert.Equal(1, exitCode);
        var line = Assert.Single(Lines(output));
        Assert.Contains($"Cannot listen on {url}: the address is in use", line);
        Assert.False(File.Exists(_db), "the second instance opened the database");
        Assert.False(File.Exists(_db + ".lock"), "the second instance touched the database's lock");
    }

    [Fact]
    public async Task ASPNETCORE_URLS_is_honoured_and_the_start_is_summarised_in_one_line()
    {
        var url = $"http://127.0.0.1:{ServiceProcess.FreePort()}";
        var environment = ServiceProcess.Settings(_db, _slack, new Dictionary<string, string>
        {
            ["ASPNETCORE_URLS"] = url,
            ["Logging__LogLevel__B25.Alerting"] = "Information",
            ["Slack__BotTokne"] = "xoxb-typo",
        });
        await using var service = await ServiceProcess.StartAsync(environment);
        Assert.Equal(url, service.BaseUrl);

        await Eventually.True(() => service.Output.Contains("B25.Alerting started"), "the start summary is logged");
        var line = Assert.Single(Lines(service.Output), l => l.Contains("B25.Alerting started"));
        var summary = System.Text.Json.JsonDocument.Parse(line).RootElement.GetProperty("@m").GetString()!;
        Assert.Contains($"listening on {url}", summary);
        Assert.Contains($"storage Sqlite {_db}", summary);
        Assert.Contains("bus InMemory", summary);
        Assert.Contains("slack on: #trading-alerts-critical #trading-alerts #trading-info", summary);
        Assert.Contains("pagerduty off", summary);
        Assert.Contains("critical {receiver=~\"b25-critical|b25-emergency-stop\"} -> slack:#trading-alerts-critical", summary);
        Assert.DoesNotContain("xoxb", service.Output);
        Assert.Single(Lines(service.Output), l => l.Contains("unknown key Slack:BotTokne"));
    }

    [Fact]
    public async Task A_relative_database_is_found_from_any_working_folder()
    {
        var name = $"b25-anchor-{Guid.NewGuid():N}.db";
        var anchored = Path.Combine(AppContext.BaseDirectory, name);
        var elsewhere = Directory.CreateTempSubdirectory("b25-cwd-").FullName;
        try
        {
            var environment = ServiceProcess.Settings(name, _slack, new Dictionary<string, string> { ["Logging__LogLevel__B25.Alerting"] = "Information" });
            await using (var service = await ServiceProcess.StartAsync(environment, workingDirectory: elsewhere))
            {
                await Eventually.True(() => service.Output.Contains("B25.Alerting started"), "the start summary is logged");
                Assert.Contains($"storage Sqlite {anchored}", service.Output);
            }
            Assert.True(File.Exists(anchored));
            Assert.Empty(Directory.EnumerateFiles(elsewhere));
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            foreach (var suffix in new[] { "", "-wal", "-shm", ".lock" }) File.Delete(anchored + suffix);
            Directory.Delete(elsewhere, recursive: true);
        }
    }
}
