using B25.Alerting.Hosting;

namespace B25.Alerting.Runbooks;

internal static class RunbookServices
{
    /// <summary>
    /// Registers the <see cref="RunbookLibrary"/> (settings from "Runbooks") and the <see cref="PublicLinks"/> its
    /// links are made absolute with (settings from "Service", checked at start).
    /// </summary>
    public static IServiceCollection AddRunbooks(this IServiceCollection services)
    {
        services.AddPublicLinks();
        services.AddOptions<RunbookOptions>().BindConfiguration(RunbookOptions.Section)
            .Configure<IConfiguration>((options, configuration) => options.GrafanaUrl = configuration["Grafana:Url"])
            .ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<RunbookLibrary>();
        return services;
    }
}
