using System.Text.Json;
using B25.Alerting.Tests.Runbooks;
using B25.Alerting.Tests.Support;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;

namespace B25.Alerting.Tests.Hosting;

/// <summary>Readiness knows whether Slack takes the bot token (auth.test).</summary>
public sealed class SlackReadinessTests : IDisposable
{
    private readonly SlackStandIn _slack = new();

    public void Dispose() => _slack.Dispose();

    private void AuthTestAnswers(string body) =>
        _slack.Server.Given(Request.Create().WithPath("/api/auth.test").UsingPost())
            .RespondWith(Response.Create().WithStatusCode(200).WithHeader("Content-Type", "application/json").WithBody(body));

    private static async Task<JsonElement> ReadyAsync(HttpClient client)
    {
        var response = await client.GetAsync("/health/ready");
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    [Fact]
    public async Task A_revoked_token_makes_readiness_degraded_with_the_reason_a_metric_and_one_loud_line()
    {
        AuthTestAnswers("""{"ok":false,"error":"token_revoked"}""");
        using var logs = new LogCapture();
        using var factory = new AlertingFactory(_slack);
        using var service = factory.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton<ILoggerProvider>(logs)));
        var client = service.CreateClient();

        await Eventually.True(async () => (await ReadyAsync(client)).GetProperty("status").GetString() == "Degraded", "readiness turns Degraded");
        var ready = await ReadyAsync(client);
        Assert.Contains("token_revoked", ready.GetProperty("checks").GetProperty("slack").GetProperty("description").GetString());
        Assert.Equal(0, await MetricsText.ReadAsync(client, "b25_alerting_slack_token_valid"));
        Assert.Contains("b25_alerting_slack_token_valid 0", await client.GetStringAsync("/metrics"));
        var loud = Assert.Single(logs.Lines, e => e.Message.Contains("SLACK REFUSES THE BOT TOKEN"));
        Assert.Equal(LogLevel.Critical, loud.Level);
        Assert.DoesNotContain(logs.Lines, e => e.Message.Contains("xoxb-test"));
    }

    [Fact]
    public async Task An_accepted_token_keeps_readiness_healthy()
    {
        AuthTestAnswers("""{"ok":true,"team":"B25","user":"b25-alerting"}""");
        using var factory = new AlertingFactory(_slack);
        var client = factory.CreateClient();

        await Eventually.True(async () => (await ReadyAsync(client)).GetProperty("checks").GetProperty("slack").GetProperty("description").GetString()!.Contains("accepted"),
            "auth.test was asked");
        Assert.Equal("Healthy", (await ReadyAsync(client)).GetProperty("status").GetString());
        Assert.Contains("b25_alerting_slack_token_valid 1", await client.GetStringAsync("/metrics"));
    }
}
