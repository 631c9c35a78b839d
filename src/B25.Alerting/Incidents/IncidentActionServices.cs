using B25.Alerting.Silences;
using B25.Alerting.Storage;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Incidents;

internal static class IncidentActionServices
{
    /// <summary>Human actions on incidents: their store, the Alertmanager silences client, the actions API's settings.</summary>
    public static IServiceCollection AddIncidentActions(this IServiceCollection services)
    {
        services.AddOptions<ApiOptions>().BindConfiguration(ApiOptions.Section);
        services.AddOptions<AlertmanagerOptions>().BindConfiguration(AlertmanagerOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IIncidentActionStore, IncidentActionStore>();
        services.AddHttpClient<IAlertmanagerSilences, AlertmanagerSilences>((sp, http) =>
            http.Timeout = sp.GetRequiredService<IOptions<AlertmanagerOptions>>().Value.RequestTimeout);
        services.AddSingleton<IncidentActions>();
        services.AddSingleton<IEscalationStore, EscalationStore>();
        services.AddHostedService<EscalationMonitor>();

        services.AddSingleton<Interactions.ReplayGuard>();
        services.AddSingleton<Interactions.ActionRunner>();
        services.AddHostedService(sp => sp.GetRequiredService<Interactions.ActionRunner>());
        services.AddHttpClient<Interactions.SlackResponder>(http => http.Timeout = TimeSpan.FromSeconds(10));
        services.AddAuthentication()
            .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, Interactions.SlackSignatureHandler>(Interactions.SignedRequests.SlackScheme, null)
            .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, Interactions.PagerDutySignatureHandler>(Interactions.SignedRequests.PagerDutyScheme, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(Interactions.SignedRequests.SlackPolicy, p => p.AddAuthenticationSchemes(Interactions.SignedRequests.SlackScheme).RequireAuthenticatedUser())
            .AddPolicy(Interactions.SignedRequests.PagerDutyPolicy, p => p.AddAuthenticationSchemes(Interactions.SignedRequests.PagerDutyScheme).RequireAuthenticatedUser());
        return services;
    }
}
