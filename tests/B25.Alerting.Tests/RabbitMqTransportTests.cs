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
    private Task<ServiceProcess> StartService(string queue, string? brokerUri = null, IDictionary<string, string>? extra = null)
    {
        var settings = new Dictionary<string, string>
        {
            ["Bus__Transport"] = "RabbitMq",
            ["Bus__RabbitMq__Uri"] = brokerUri ?? broker.Uri,
            ["Bus__RabbitMq__Queue"] = queue,
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string>()) settings[key] = value;
        return ServiceProcess.StartAsync(ServiceProcess.Settings(DatabasePath, Slack, settings));
    }

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

    private static async Task<(HttpStatusCode, string)> Health(HttpClient client)
    {
        using var response = await client.GetAsync("/health/ready");
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Pages_go_out_while_the_broker_is_unreachable_and_once_when_it_is_back()
    {
        // The service reaches the broker through a proxy the test cuts: to the service, the broker is down.
        await using var proxy = new TcpProxy("127.0.0.1", broker.AmqpPort);
        await using var service = await StartService("b25-alerting-notifications-nobus", $"amqp://guest:guest@{proxy.Host}:{proxy.Port}/");
        using var metrics = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };

        Assert.Equal(HttpStatusCode.OK, (await Post(service, Body("g-nobus-1", Firing("a1")))).StatusCode);
        await Eventually.True(() => Slack.Posts.Count == 1, "posted via RabbitMQ", 20_000);
        Assert.Equal(0, await MetricsText.ReadAsync(metrics, "b25_alerting_applied_without_bus_total"));
        await Eventually.True(async () => await MetricsText.ReadAsync(metrics, "b25_alerting_bus_healthy") == 1, "bus healthy", 10_000);

        proxy.Cut(CutMode.Refuse);
        // Still ready, Degraded with the bus's reason: a load balancer keeps sending it notifications.
        await Eventually.True(async () => await Health(metrics) is (HttpStatusCode.OK, var body) && body.Contains("\"Degraded\""),
            "the bus noticed the broker is gone", 30_000);
        Assert.Equal(HttpStatusCode.OK, (await Post(service, Body("g-nobus-2", Firing("b1")))).StatusCode);
        await Eventually.True(() => Slack.Posts.Count == 2, "paged while the broker is unreachable", 20_000);
        Assert.NotNull(proxy.Cutting);
        Assert.Equal(1, await MetricsText.ReadAsync(metrics, "b25_alerting_applied_without_bus_total"));
        Assert.Contains("applying journaled notifications here without it", service.Output);
        Assert.Equal(0, await MetricsText.ReadAsync(metrics, "b25_alerting_bus_healthy"));

        proxy.Restore();
        await Eventually.True(async () => await Health(metrics) is (HttpStatusCode.OK, var body) && body.StartsWith("{\"status\":\"Healthy\""),
            "the bus is back", 60_000);
        await Eventually.True(async () => await MetricsText.ReadAsync(metrics, "b25_alerting_bus_healthy") == 1, "bus healthy again", 10_000);
        Assert.Equal(HttpStatusCode.OK, (await Post(service, Body("g-nobus-2", Resolved("b1")))).StatusCode);
        await Eventually.True(() => Slack.Updates.Count == 1, "resolved via RabbitMQ", 20_000);
        await Settled.ForSqliteAsync(DatabasePath);
        Assert.Equal(2, Slack.Posts.Count); // one per incident, nothing sent twice when the bus came back
        Assert.Contains("RESOLVED", Slack.Updates[0].Text);
        Assert.Equal(1, await MetricsText.ReadAsync(metrics, "b25_alerting_applied_without_bus_total"));
    }
}
