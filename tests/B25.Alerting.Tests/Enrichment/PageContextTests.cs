using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using B25.Alerting.Tests.Support;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.Enrichment;

/// <summary>
/// Through the whole service: a page carries the value, sparkline and threshold of the alert's series from a
/// real Prometheus; with Prometheus down or silent it still goes out, without context, within Enrichment:Timeout.
/// </summary>
[Collection(EnrichmentPrometheusCollection.Name)]
public sealed class PageContextTests(EnrichmentPrometheus prometheus)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task The_page_carries_the_value_sparkline_and_threshold_of_the_real_series()
    {
        using var slack = new SlackStandIn();
        using var factory = new AlertingFactory(slack, Settings(prometheus.Url));
        using var client = factory.Authorized();

        await SendAsync(client, "b25_test_queue_depth > 100", "order-execution:9091");

        await Eventually.True(() => slack.Posts.Count == 1, "the page");
        var page = slack.Posts[0];
        // 180 now, crossing 100 in the window: the first line says the value and the rule's threshold.
        Assert.Contains("now 180 (fires &gt; 100)", page.Text);
        var blocks = page.Blocks!.ToJsonString(new System.Text.Json.JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        Assert.Matches("[▁▂▃▄▅▆▇█]{10,}", blocks);
        Assert.Matches("min [0-9.]+ · max 180", blocks);
        Assert.DoesNotContain("Live context missing", blocks);
    }

    [Theory]
    [InlineData("down")]
    [InlineData("silent")]
    public async Task Without_Prometheus_the_page_goes_out_without_context_within_the_timeout(string how)
    {
        using var silent = new SilentHttpServer();
        var url = how == "silent" ? silent.Url : $"http://127.0.0.1:{ServiceProcess.FreePort()}";
        using var slack = new SlackStandIn();
        using var factory = new AlertingFactory(slack, Settings(url));
        using var client = factory.Authorized();
        // Warm the path (JIT, first Slack connection) with an alert that has no PromQL, so the timing below is the enrichment's.
        await SendAsync(client, null, "warm-up", group: "warm");
        await Eventually.True(() => slack.Posts.Count == 1, "the warm-up page");

        var sent = Stopwatch.StartNew();
        await SendAsync(client, "b25_test_queue_depth > 100", "order-execution:9091");
        await Eventually.True(() => slack.Posts.Count == 2, "the page without context");
        sent.Stop();

        var page = slack.Posts[1];
        Assert.DoesNotContain("now 180", page.Text);
        Assert.Contains(how == "silent" ? "Prometheus did not answer in time" : "Prometheus failed", page.Blocks!.ToJsonString());
        // Timeout plus the rest of the path; generous for a busy machine, far below a query that waits for ever.
        Assert.True(sent.Elapsed < Timeout + TimeSpan.FromSeconds(4), $"paged after {sent.Elapsed}");
    }

    private static Dictionary<string, string?> Settings(string prometheusUrl) => new()
    {
        ["Prometheus:Url"] = prometheusUrl,
        ["Enrichment:Timeout"] = Timeout.ToString(),
    };

    private static async Task SendAsync(HttpClient client, string? expression, string instance, string group = "g-context")
    {
        var body = Build(group, "b25-critical", Firing("fp-" + instance, "OrderExecutionBacklog") with
        {
            Labels = new() { ["alertname"] = "OrderExecutionBacklog", ["severity"] = "critical", ["service"] = "order-execution", ["instance"] = instance, ["job"] = "order-execution" },
        });
        body["alerts"]![0]!["generatorURL"] = expression is null ? "" : $"http://prometheus.test/graph?g0.expr={Uri.EscapeDataString(expression)}&g0.tab=1";
        var response = await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(body.ToJsonString()));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
