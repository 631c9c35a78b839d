using B25.Alerting.Delivery;

namespace B25.Alerting.RiskManager;

internal static class RiskManagerChannel
{
    /// <summary>Registers emergency stops, incident events and the risk manager's answers.</summary>
    public static IServiceCollection AddRiskManagerChannel(this IServiceCollection services)
    {
        services.AddOptions<RiskManagerOptions>().BindConfiguration(RiskManagerOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IChannelNotifier, EmergencyStopNotifier>();
        services.AddSingleton<IChannelNotifier, IncidentEventsNotifier>();
        return services;
    }
}
