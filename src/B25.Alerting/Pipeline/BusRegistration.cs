using MassTransit;

namespace B25.Alerting.Pipeline;

internal static class BusRegistration
{
    /// <summary>The bus's redelivery intervals (ms) of a notification that failed to apply; after the last, the recovery sweep.</summary>
    internal static readonly int[] RetryIntervals = [100, 500, 2000, 5000];

    /// <summary>
    /// The pipeline's bus: in-memory by default, RabbitMQ (quorum queue, publisher confirms) in
    /// production. Notifications of one alert group are processed in order (partitioned by group);
    /// different groups in parallel.
    /// </summary>
    public static IServiceCollection AddAlertingBus(this IServiceCollection services, IConfiguration configuration)
    {
        var options = BindOrDefault<BusOptions>(configuration, BusOptions.Section);
        var storage = BindOrDefault<Storage.StorageOptions>(configuration, Storage.StorageOptions.Section).Provider;
        var partitions = options.PartitionsFor(storage);
        services.AddMassTransit(x =>
        {
            x.AddConsumer<NotificationConsumer>();
            x.AddConsumer<RiskManager.EmergencyStopAnswerConsumer>();
            // MassTransit reports anonymous usage telemetry to masstransit.io five minutes after the bus starts: a call out of the
            // trading network that nobody asked for (and, where there is no route out, a warning in the log). Off; the
            // MASSTRANSIT_USAGE_TELEMETRY environment variable still decides where it is set.
            x.ConfigureUsageTelemetryOptions(o => o.Enabled = false);
            // A replica whose bus is down still accepts, applies and delivers (ApplyWithoutBus): ready, Degraded with the bus's
            // reason, so a load balancer keeps sending it Alertmanager's notifications through a broker outage.
            if (options.Transport == BusTransport.RabbitMq && options.ApplyLocallyAfter > TimeSpan.Zero)
                x.ConfigureHealthCheckOptions(h => h.MinimalFailureStatus = Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Degraded);
            if (options.Transport == BusTransport.RabbitMq && Uri.TryCreate(options.RabbitMq.Uri, UriKind.Absolute, out var uri))
            {
                x.UsingRabbitMq((context, cfg) =>
                {
                    cfg.Host(uri);
                    cfg.ReceiveEndpoint(options.RabbitMq.Queue, e =>
                    {
                        e.SetQuorumQueue();
                        e.PrefetchCount = Math.Max(16, partitions * 4);
                        Configure(e, context, partitions);
                    });
                    cfg.ReceiveEndpoint(options.RabbitMq.AnswersQueue, e =>
                    {
                        e.SetQuorumQueue();
                        ConfigureAnswers(e, context);
                    });
                });
            }
            else
            {
                x.UsingInMemory((context, cfg) =>
                {
                    cfg.ReceiveEndpoint("b25-alerting-notifications", e => Configure(e, context, partitions));
                    cfg.ReceiveEndpoint("b25-alerting-risk-answers", e => ConfigureAnswers(e, context));
                });
            }
        });
        services.Configure<MassTransitHostOptions>(o =>
        {
            o.WaitUntilStarted = options.Transport == BusTransport.InMemory;
            o.StopTimeout = TimeSpan.FromSeconds(10);
        });
        return services;
    }

    /// <summary>
    /// The section bound, or its defaults when a value does not convert: SettingsCheck names that value and refuses the start before
    /// the bus is used.
    /// </summary>
    private static T BindOrDefault<T>(IConfiguration configuration, string section) where T : new()
    {
        try
        {
            return configuration.GetSection(section).Get<T>() ?? new T();
        }
        catch (InvalidOperationException)
        {
            return new T();
        }
    }

    private static void ConfigureAnswers(IReceiveEndpointConfigurator endpoint, IBusRegistrationContext context)
    {
        endpoint.UseMessageRetry(r => r.Intervals(100, 500, 2000, 5000));
        endpoint.ConfigureConsumer<RiskManager.EmergencyStopAnswerConsumer>(context);
    }

    private static void Configure(IReceiveEndpointConfigurator endpoint, IBusRegistrationContext context, int partitions)
    {
        endpoint.UseMessageRetry(r => r.Intervals(RetryIntervals));
        endpoint.ConfigureConsumer<NotificationConsumer>(context, c =>
            c.Message<NotificationAccepted>(m => m.UsePartitioner(partitions, p => p.Message.PartitionKey)));
    }
}
