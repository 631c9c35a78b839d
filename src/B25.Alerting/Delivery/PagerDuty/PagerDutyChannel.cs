using Microsoft.Extensions.Options;

namespace B25.Alerting.Delivery.PagerDuty;

internal static class PagerDutyChannel
{
    /// <summary>Registers the PagerDuty channel (Events API v2). With no routing key the channel is off, not broken.</summary>
    public static IServiceCollection AddPagerDutyChannel(this IServiceCollection services)
    {
        services.AddOptions<PagerDutyOptions>().BindConfiguration(PagerDutyOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddHttpClient<IPagerDutyEventsApi, PagerDutyEventsApi>((sp, http) =>
            http.Timeout = sp.GetRequiredService<IOptions<PagerDutyOptions>>().Value.RequestTimeout);
        services.AddSingleton<IChannelNotifier, PagerDutyNotifier>();
        return services;
    }
}
