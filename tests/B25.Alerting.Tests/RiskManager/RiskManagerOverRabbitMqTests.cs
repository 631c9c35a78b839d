using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using B25.Alerting.Contracts;
using B25.Alerting.Tests.Support;
using MassTransit;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.RiskManager;

/// <summary>Emergency stops on a real broker: a stand-in risk manager receives exactly one command and answers it.</summary>
[Collection(RabbitMqCollection.Name)]
public sealed class RiskManagerOverRabbitMqTests(RabbitMqBroker broker) : ProcessScenario("risk")
{
    [Fact]
    public async Task Three_concurrent_copies_give_one_command_and_its_acknowledgement_is_recorded_and_shown()
    {
        var commands = new ConcurrentBag<EmergencyStopRequested>();
        var opened = new ConcurrentBag<IncidentOpened>();
        var riskManager = Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host(new Uri(broker.Uri));
            cfg.ReceiveEndpoint($"risk-manager-stand-in-{Guid.NewGuid():N}", e =>
            {
                e.Handler<EmergencyStopRequested>(async context =>
                {
                    commands.Add(context.Message);
                    await context.Publish(new EmergencyStopAcknowledged(context.Message.CommandId, "risk-manager-test",
                        $"halted {string.Join(",", context.Message.Scope.Select(kv => kv.Key + "=" + kv.Value))}", DateTimeOffset.UtcNow));
                });
                e.Handler<IncidentOpened>(context =>
                {
                    opened.Add(context.Message);
                    return Task.CompletedTask;
                });
            });
        });
        await riskManager.StartAsync();
        try
        {
            await using var service = await ServiceProcess.StartAsync(ServiceProcess.Settings(DatabasePath, Slack, new Dictionary<string, string>
            {
                ["Bus__Transport"] = "RabbitMq",
                ["Bus__RabbitMq__Uri"] = broker.Uri,
                ["Bus__RabbitMq__Queue"] = "b25-alerting-notifications-risk",
                ["Bus__RabbitMq__AnswersQueue"] = "b25-alerting-risk-answers-risk",
            }));
            var alert = Firing("stop1", "HighDrawdown") with
            {
                Labels = new()
                {
                    ["alertname"] = "HighDrawdown", ["severity"] = "critical", ["action"] = "emergency-stop",
                    ["strategy"] = "mm-btc", ["account"] = "main",
                },
            };
            var body = Body("g-drawdown", alert);

            using var http = new HttpClient();
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AlertingFactory.Token);
            var responses = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ =>
                http.PostAsync($"{service.BaseUrl}/webhooks/alertmanager", new StringContent(body, Encoding.UTF8, "application/json"))));
            Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));

            await Eventually.True(() => !commands.IsEmpty, "the risk manager received the command", 20_000);
            // Shown on the incident's own message (an edit), not as a thread message.
            await Eventually.True(() => Slack.Calls.Any(c => c.ThreadTs is null && c.Answered && (c.Blocks?.ToJsonString() ?? "").Contains("acknowledged")),
                "the acknowledgement is shown on the incident's message", 20_000);
            Assert.Empty(Slack.Replies);
            await Eventually.Stays(() => commands.Count == 1, "exactly one command", 2_000);

            var command = commands.Single();
            Assert.Equal(Guid.Parse(command.CommandId.ToString()), command.CommandId);
            Assert.Equal("mm-btc", command.Scope["strategy"]);
            Assert.Equal("main", command.Scope["account"]);
            Assert.Equal("stop1", command.AlertFingerprint);
            var stops = (await http.GetFromJsonAsync<JsonArray>($"{service.BaseUrl}/api/emergency-stops"))!;
            var stop = Assert.Single(stops)!;
            Assert.Equal(command.CommandId.ToString(), stop["commandId"]!.GetValue<string>());
            Assert.Equal("acknowledged", stop["status"]!.GetValue<string>());
            Assert.Equal("risk-manager-test", stop["answeredBy"]!.GetValue<string>());
            await Eventually.True(() => opened.Any(o => o.IncidentId == command.IncidentId), "IncidentOpened published", 10_000);
        }
        finally
        {
            await riskManager.StopAsync();
        }
    }
}
