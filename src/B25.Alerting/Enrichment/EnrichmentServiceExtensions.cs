using B25.Alerting.Enrichment.Grafana;
using B25.Alerting.Enrichment.Logs;
using B25.Alerting.Enrichment.PromQl;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Enrichment;

internal static class EnrichmentServiceExtensions
{
    /// <summary>
    /// Registers the enrichment stage (<see cref="IIncidentEnricher"/>): settings from the Enrichment, Prometheus,
    /// Loki and Grafana sections, checked at start. A source whose Url is empty is off and never called.
    /// </summary>
    public static IServiceCollection AddEnrichment(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<EnrichmentOptions>().Bind(configuration.GetSection(EnrichmentOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<PrometheusOptions>().Bind(configuration.GetSection(PrometheusOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<LokiOptions>().Bind(configuration.GetSection(LokiOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<GrafanaOptions>().Bind(configuration.GetSection(GrafanaOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);

        services.AddHttpClient<PrometheusQueryClient>((sp, http) =>
                Configure(http, sp.GetRequiredService<IOptions<PrometheusOptions>>().Value.Url, sp))
            .ConfigurePrimaryHttpMessageHandler(CreateHandler)
            .SetHandlerLifetime(Timeout.InfiniteTimeSpan);
        services.AddHttpClient<LokiQueryClient>((sp, http) =>
                Configure(http, sp.GetRequiredService<IOptions<LokiOptions>>().Value.Url, sp))
            .ConfigurePrimaryHttpMessageHandler(CreateHandler)
            .SetHandlerLifetime(Timeout.InfiniteTimeSpan);

        services.AddSingleton<IncidentEnricher>();
        services.AddSingleton<IIncidentEnricher>(sp => sp.GetRequiredService<IncidentEnricher>());
        EnrichmentMetrics.Initialise();
        return services;
    }

    private static void Configure(HttpClient http, string? url, IServiceProvider services)
    {
        if (SourceUrl.BaseAddress(url) is { } baseAddress) http.BaseAddress = baseAddress;
        // The enrichment's own deadline (Enrichment:Timeout) cancels every call; this only backs it up.
        http.Timeout = services.GetRequiredService<IOptions<EnrichmentOptions>>().Value.Timeout + TimeSpan.FromSeconds(5);
    }

    // The enricher is a singleton holding its typed clients: the handler is never recycled, so connections are,
    // and a moved Prometheus or Loki (DNS) is found again within minutes. No retries: a 1 s budget has no room.
    private static SocketsHttpHandler CreateHandler() => new()
    {
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        ConnectTimeout = TimeSpan.FromSeconds(5),
        AutomaticDecompression = System.Net.DecompressionMethods.All,
    };
}
