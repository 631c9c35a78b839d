using System.Diagnostics;
using System.Net;
using B25.Alerting.Tests.Support;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.Observability;

/// <summary>One trace from the webhook request over the bus to the processing; outbound calls traced too.</summary>
[Collection(ProcessWideMetrics.Name)] // listens to every span of the process: another test's webhook would count
public sealed class TracingTests : IDisposable
{
    private readonly SlackStandIn _slack = new();

    public void Dispose() => _slack.Dispose();

    [Fact]
    public async Task The_webhook_request_and_its_processing_over_the_bus_are_one_trace_and_outbound_calls_are_traced()
    {
        var spans = new List<Activity>();
        using var factory = new AlertingFactory(_slack);
        using var service = factory.WithWebHostBuilder(b => b.ConfigureTestServices(s =>
            s.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(spans))));
        var client = service.CreateClient();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AlertingFactory.Token);

        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Body("g-trace", Firing("t1"))))).StatusCode);
        await Eventually.True(() => _slack.Posts.Count == 1, "posted");
        await client.GetStringAsync("/metrics");

        Activity[] Snapshot() { lock (spans) return [.. spans]; }
        await Eventually.True(() => Snapshot().Any(a => a.Kind == ActivityKind.Client && a.DisplayName.StartsWith("POST", StringComparison.Ordinal)), "the Slack call's span is exported");
        var all = Snapshot();
        var webhook = Assert.Single(all, a => a.Kind == ActivityKind.Server && a.DisplayName.Contains("/webhooks/alertmanager"));
        Assert.True(all.Any(a => a.DisplayName == "b25-alerting-notifications process" && a.TraceId == webhook.TraceId),
            string.Join("\n", all.Select(a => $"{a.TraceId} {a.Source.Name} {a.Kind} {a.DisplayName}")));
        Assert.DoesNotContain(all, a => a.Kind == ActivityKind.Server && (a.DisplayName.Contains("/metrics") || a.DisplayName.Contains("/health")));
    }
}
