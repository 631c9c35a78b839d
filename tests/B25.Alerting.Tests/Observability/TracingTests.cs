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
        // An OTLP endpoint makes the spans recorded (nothing listens there: only the in-memory exporter below sees them).
        using var factory = new AlertingFactory(_slack, new Dictionary<string, string?> { ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9" });
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

    [Fact]
    public async Task Without_an_exporter_spans_are_not_recorded_but_the_trace_still_reaches_the_processing_log_lines()
    {
        var spans = new List<Activity>();
        using var logs = new Runbooks.LogCapture();
        using var factory = new AlertingFactory(_slack);
        using var service = factory.WithWebHostBuilder(b => b.ConfigureTestServices(s =>
        {
            s.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(logs);
            s.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(spans));
        }));
        var client = service.CreateClient();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AlertingFactory.Token);

        // The caller's trace (W3C traceparent, sampled): the notification's processing is in it, over the bus.
        var trace = ActivityTraceId.CreateRandom();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/webhooks/alertmanager") { Content = AlertingFactory.Json(Body("g-trace-off", Firing("t2"))) };
        request.Headers.Add("traceparent", $"00-{trace.ToHexString()}-{ActivitySpanId.CreateRandom().ToHexString()}-01");
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(request)).StatusCode);
        await Eventually.True(() => _slack.Posts.Count == 1, "posted");

        var opened = Assert.Single(logs.Lines, l => l.EventId == 2001); // "Incident ... opened"
        Assert.Equal(trace.ToHexString(), opened.TraceId);
        Assert.False(opened.Recorded);
        lock (spans) Assert.Empty(spans);
    }
}
