using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace B25.Alerting.Observability;

/// <summary>
/// OpenTelemetry traces: the webhook request, its hop over the bus (MassTransit carries the trace context in
/// the message), and every outbound HTTP call (Slack, PagerDuty, Prometheus, Loki). Spans are always recorded,
/// so every log line written inside one carries its trace id (<c>@tr</c>); they are exported over OTLP only
/// when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (the standard OpenTelemetry variables apply:
/// <c>OTEL_EXPORTER_OTLP_PROTOCOL</c>, <c>OTEL_EXPORTER_OTLP_HEADERS</c>, <c>OTEL_SERVICE_NAME</c>, ...).
/// Scrapes, health probes and the start's warm-up calls are not traced.
/// </summary>
internal static class Tracing
{
    public const string ServiceName = "b25-alerting";

    /// <summary>The service's own spans (the hand-over from the journal to the bus).</summary>
    public static readonly System.Diagnostics.ActivitySource Source = new("B25.Alerting");

    public static IServiceCollection AddAlertingTracing(this IServiceCollection services, IConfiguration configuration)
    {
        var export = !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"])
                     || !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]);
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(ServiceName))
            .WithTracing(tracing =>
            {
                tracing
                    .AddAspNetCoreInstrumentation(o => o.Filter = context =>
                        !context.Request.Path.StartsWithSegments("/metrics") && !context.Request.Path.StartsWithSegments("/health")
                        && context.RequestServices.GetService<Hosting.WarmUpRequests>()?.Marks(context.Request) != true)
                    .AddHttpClientInstrumentation(o => o.FilterHttpRequestMessage = request => !request.Headers.Contains(Hosting.WarmUpRequests.Header))
                    .AddSource("MassTransit")
                    .AddSource(Source.Name);
                if (export) tracing.AddOtlpExporter();
            });
        return services;
    }
}
