using System.Net;
using System.Text.Json;
using B25.Alerting.Hosting;
using B25.Alerting.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace B25.Alerting.Tests.Hosting;

/// <summary>Readiness waits for the start's warm-up, which runs what the first page needs and leaves nothing behind.</summary>
public sealed class WarmUpReadinessTests : IDisposable
{
    private readonly SlackStandIn _slack = new();

    public void Dispose() => _slack.Dispose();

    private static async Task<(HttpStatusCode Code, JsonElement Body)> ReadyAsync(HttpClient client)
    {
        var response = await client.GetAsync("/health/ready");
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    [Fact]
    public async Task Readiness_is_503_until_the_warm_up_is_done_then_200_with_every_step_run()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var factory = new AlertingFactory(_slack);
        // One more step after the built-in ones, held until the test lets it go: the warm-up is "still running" meanwhile.
        using var service = factory.WithWebHostBuilder(b => b.ConfigureTestServices(s =>
            s.AddSingleton(new WarmUpStep("test gate", (_, ct) => gate.Task.WaitAsync(ct)))));
        var warmUp = service.Services.GetRequiredService<StartupWarmUp>();
        warmUp.ProbeWait = TimeSpan.FromMilliseconds(200);
        // Every step runs to its end however busy the machine is (in production a slow step is skipped instead).
        warmUp.StepTimeout = TimeSpan.FromMinutes(2);
        warmUp.Budget = TimeSpan.FromMinutes(5);
        var client = service.CreateClient();

        var (early, body) = await ReadyAsync(client);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, early);
        var check = body.GetProperty("checks").GetProperty("warm-up");
        Assert.Equal("Unhealthy", check.GetProperty("status").GetString());
        Assert.Contains("warming up", check.GetProperty("description").GetString());
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health/live")).StatusCode); // liveness does not wait for it

        gate.SetResult();
        await Eventually.True(async () => (await ReadyAsync(client)).Code == HttpStatusCode.OK, "ready once the warm-up is done");
        var done = (await ReadyAsync(client)).Body.GetProperty("checks").GetProperty("warm-up").GetProperty("description").GetString()!;
        foreach (var step in new[] { "intake", "journal", "state machine", "bus", "render", "delivery reads", "delivery", "slack connection", "test gate" })
            Assert.Contains(step + " ", done);
        Assert.DoesNotContain("failed", done);
        Assert.DoesNotContain("gave up", done);
    }

    [Fact]
    public async Task The_warm_up_stores_nothing_and_sends_nothing()
    {
        using var factory = new AlertingFactory(_slack);
        var client = factory.CreateClient();
        await Eventually.True(async () => (await ReadyAsync(client)).Code == HttpStatusCode.OK, "ready");
        await factory.Services.GetRequiredService<StartupWarmUp>().Done;

        await using var db = await factory.OpenStorageAsync();
        foreach (var table in new[] { "notifications", "incidents", "alerts", "deliveries" })
            Assert.Equal(0L, await db.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM {table}"));
        Assert.DoesNotContain(_slack.Calls, c => c.Method.StartsWith("chat.", StringComparison.Ordinal));
    }
}
