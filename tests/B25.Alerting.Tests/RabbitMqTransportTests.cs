using System.Net;
using System.Net.Http.Headers;
using System.Text;
using B25.Alerting.Tests.Support;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests;

/// <summary>The pipeline over a real RabbitMQ broker (Bus:Transport = RabbitMq).</summary>
[Collection(RabbitMqCollection.Name)]
public sealed class RabbitMqTransportTests(RabbitMqBroker broker) : ProcessScenario("rmq")
{
    private Task<ServiceProcess> StartService(string queue) => ServiceProcess.StartAsync(ServiceProcess.Settings(DatabasePath, Slack, new Dictionary<string, string>
    {
        ["Bus__Transport"] = "RabbitMq",
        ["Bus__RabbitMq__Uri"] = broker.Uri,
        ["Bus__RabbitMq__Queue"] = queue,
    }));

    private static async Task<HttpResponseMessage> Post(ServiceProcess service, string body)
    {
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AlertingFactory.Token);
        return await http.PostAsync($"{service.BaseUrl}/webhooks/alertmanager", new StringContent(body, Encoding.UTF8, "application/json"));
    }

    [Fact]
    public async Task Incident_life_runs_over_a_quorum_queue()
    {
        const string queue = "b25-alerting-notifications-life";
        await using var service = await StartService(queue);

        Assert.Equal(HttpStatusCode.OK, (await Post(service, Body("g-rmq", Firing("a1")))).StatusCode);
        await Eventually.True(() => Slack.Posts.Count == 1, "posted via RabbitMQ", 20_000);
        Assert.Equal(HttpStatusCode.OK, (await Post(service, Body("g-rmq", Resolved("a1")))).StatusCode);
        await Eventually.True(() => Slack.Updates.Count == 1, "resolved edit via RabbitMQ", 20_000);
        Assert.Contains("RESOLVED", Slack.Updates[0].Text);

        var queues = await broker.ListQueuesAsync();
        Assert.Matches($@"(?m)^{queue}\s+quorum", queues);
    }

    [Fact]
    public async Task Three_concurrent_copies_post_exactly_one_message()
    {
        await using var service = await StartService("b25-alerting-notifications-ha");
        var body = Body("g-rmq-ha", Firing("a1"), Firing("a2"));

        var responses = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => Post(service, body)));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        await Eventually.True(() => Slack.Posts.Count == 1, "one post", 20_000);
        await Settled.ForSqliteAsync(DatabasePath);
        Assert.Single(Slack.Calls); // exactly one message
    }
}
