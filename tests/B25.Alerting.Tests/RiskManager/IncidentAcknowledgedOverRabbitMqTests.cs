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

/// <summary>An acknowledgement reaches the risk manager on a real broker: IncidentAcknowledged, once, with who and when.</summary>
[Collection(RabbitMqCollection.Name)]
public sealed class IncidentAcknowledgedOverRabbitMqTests(RabbitMqBroker broker) : ProcessScenario("ack")
{
    [Fact]
    public async Task Acknowledging_publishes_IncidentAcknowledged_once()
    {
        var acknowledged = new ConcurrentBag<IncidentAcknowledged>();
        var riskManager = Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host(new Uri(broker.Uri));
            cfg.ReceiveEndpoint($"risk-manager-ack-stand-in-{Guid.NewGuid():N}", e => e.Handler<IncidentAcknowledged>(context =>
            {
                acknowledged.Add(context.Message);
                return Task.CompletedTask;
            }));
        });
        await riskManager.StartAsync();
        try
        {
            await using var service = await ServiceProcess.StartAsync(ServiceProcess.Settings(DatabasePath, Slack, new Dictionary<string, string>
            {
                ["Bus__Transport"] = "RabbitMq",
                ["Bus__RabbitMq__Uri"] = broker.Uri,
                ["Bus__RabbitMq__Queue"] = "b25-alerting-notifications-ack",
                ["Bus__RabbitMq__AnswersQueue"] = "b25-alerting-risk-answers-ack",
                ["Api__BearerToken"] = AlertingFactory.Token,
            }));
            using var http = new HttpClient();
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AlertingFactory.Token);
            Assert.Equal(HttpStatusCode.OK, (await http.PostAsync($"{service.BaseUrl}/webhooks/alertmanager",
                new StringContent(Body("g-ack", Firing("a1")), Encoding.UTF8, "application/json"))).StatusCode);
            string? id = null;
            await Eventually.True(async () =>
                (id = (await http.GetFromJsonAsync<JsonArray>($"{service.BaseUrl}/api/incidents"))!.FirstOrDefault()?["id"]?.GetValue<string>()) is not null,
                "the incident opened", 20_000);
            var before = DateTimeOffset.UtcNow;

            var answers = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ =>
                http.PostAsJsonAsync($"{service.BaseUrl}/api/incidents/{id}/acknowledge", new { by = "ops-script" })));
            Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.StatusCode));

            await Eventually.True(() => !acknowledged.IsEmpty, "the risk manager received IncidentAcknowledged", 20_000);
            await Eventually.Stays(() => acknowledged.Count == 1, "exactly once", 2_000);
            var message = acknowledged.Single();
            Assert.Equal(id, message.IncidentId);
            Assert.Equal("api:ops-script", message.AcknowledgedBy);
            Assert.InRange(message.AcknowledgedAt, before.AddSeconds(-5), DateTimeOffset.UtcNow);
        }
        finally
        {
            await riskManager.StopAsync();
        }
    }
}
