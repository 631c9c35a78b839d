using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace B25.Alerting.Observability;

/// <summary>
/// OpenTelemetry traces: the webhook request, its hop over the bus (MassTransit carries the trace context in
/// the message), and every outbound HTTP call (Slack, PagerDuty, Prometheus, Loki). Spans are always started and
/// their context carried (over the bus, in outbound calls), so every log line written inside one carries its
/// trace id (<c>@tr</c>). They are recorded and exported over OTLP only when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>
/// (or <c>OTEL_EXPORTER_OTLP_TRACES_ENDPOINT</c>) is set (the standard OpenTelemetry variables apply:
/// <c>OTEL_EXPORTER_OTLP_PROTOCOL</c>, <c>OTEL_EXPORTER_OTLP_HEADERS</c>, <c>OTEL_SERVICE_NAME</c>, ...); without
/// an exporter nothing would read them, and filling them in (OpenTelemetry's listeners, the instrumentations' tags) took
/// about 1-2 % of the service's CPU while new incidents came in (docs/benchmarks.md).
/// Scrapes, health probes and the start's warm-up calls are not traced.
/// </summary>
internal static class Tracing
{
    public const string ServiceName = "b25-alerting";

    /// <summary>The service's own spans (the hand-over from the journal to the bus).</summary>
    public static readonly System.Diagnostics.ActivitySource Source = new("B25.Alerting");

    // The sources whose spans make the trace: the request (ASP.NET Core), the hand-over to the bus (ours), the bus (MassTransit)
    // and the outbound calls (HttpClient).
    private static readonly string[] Sources = ["Microsoft.AspNetCore", Source.Name, "MassTransit", "System.Net.Http"];

    public static IServiceCollection AddAlertingTracing(this IServiceCollection services, IConfiguration configuration)
    {
        var export = !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"])
                     || !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]);
        if (!export)
        {
            services.AddHostedService<TraceContextOnly>();
            return services;
        }
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(ServiceName))
            .WithTracing(tracing => tracing
                .AddAspNetCoreInstrumentation(o => o.Filter = context =>
                    !context.Request.Path.StartsWithSegments("/metrics") && !context.Request.Path.StartsWithSegments("/health")
                    && context.RequestServices.GetService<Hosting.WarmUpRequests>()?.Marks(context.Request) != true)
                .AddHttpClientInstrumentation(o => o.FilterHttpRequestMessage = request => !request.Headers.Contains(Hosting.WarmUpRequests.Header))
                .AddSource("MassTransit")
                .AddSource(Source.Name)
                .AddOtlpExporter());
        return services;
    }

    /// <summary>
    /// Without an exporter: every span of <see cref="Sources"/> is started and carries its context and ids (log lines, the bus,
    /// outbound calls), nothing more: the activity exists with IsAllDataRequested false, so nothing fills it in. Not
    /// OpenTelemetry with its off sampler: it starts no span under a local parent, so the hand-over to the bus (a background
    /// loop) lost the request's trace and the processing's log lines carried another.
    /// </summary>
    private sealed class TraceContextOnly : IHostedService, IDisposable
    {
        private readonly System.Diagnostics.ActivityListener _listener = new()
        {
            ShouldListenTo = source => Sources.Contains(source.Name),
            Sample = static (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) =>
                System.Diagnostics.ActivitySamplingResult.PropagationData,
            SampleUsingParentId = static (ref System.Diagnostics.ActivityCreationOptions<string> _) =>
                System.Diagnostics.ActivitySamplingResult.PropagationData,
        };

        public Task StartAsync(CancellationToken cancellationToken)
        {
            System.Diagnostics.ActivitySource.AddActivityListener(_listener);
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public void Dispose() => _listener.Dispose();
    }
}
