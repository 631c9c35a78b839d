using System.Text.Json;
using B25.Alerting.Delivery;
using B25.Alerting.Delivery.Email;
using B25.Alerting.Delivery.PagerDuty;
using B25.Alerting.Delivery.Presentation;
using B25.Alerting.Delivery.Slack;
using B25.Alerting.Enrichment;
using B25.Alerting.Incidents;
using B25.Alerting.Interactions;
using B25.Alerting.Pipeline;
using B25.Alerting.RiskManager;
using B25.Alerting.Routing;
using B25.Alerting.Runbooks;
using B25.Alerting.Storage;
using B25.Alerting.Storage.Postgres;
using B25.Alerting.Storage.Sqlite;
using B25.Alerting.Webhooks;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Prometheus;

namespace B25.Alerting.Hosting;

internal static partial class AlertingServiceExtensions
{
    public static WebApplicationBuilder AddAlerting(this WebApplicationBuilder builder)
    {
        builder.Logging.ClearProviders();
        builder.Logging.AddJsonConsole(o =>
        {
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";
            o.IncludeScopes = true;
        });

        // .NET meters reach /metrics through prometheus-net's adapter, but not Npgsql's: it records a measurement
        // per command, which cost about 9 % of the service's CPU under load, and nothing watches it.
        Metrics.ConfigureMeterAdapter(o => o.InstrumentFilterPredicate = instrument => instrument.Meter.Name != "Npgsql");

        var services = builder.Services;
        services.AddProblemDetails();
        services.AddSingleton(TimeProvider.System);

        services.AddOptions<WebhookOptions>().BindConfiguration(WebhookOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<StorageOptions>().BindConfiguration(StorageOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<BusOptions>().BindConfiguration(BusOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<SlackOptions>().BindConfiguration(SlackOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<TemplateOptions>().BindConfiguration(TemplateOptions.Section);
        services.AddOptions<RoutingOptions>().BindConfiguration(RoutingOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<RoutingOptions>, RoutingOptionsValidator>();

        services.AddSingleton<IStorageProvider>(sp =>
        {
            var storage = sp.GetRequiredService<IOptions<StorageOptions>>();
            return storage.Value.Provider == StorageProviderKind.Postgres ? new PostgresStorage(storage) : new SqliteStorage(storage);
        });
        services.AddSingleton<DatabaseLock>();
        services.AddSingleton<IJournalStore, JournalStore>();
        services.AddSingleton<IIncidentStore, IncidentStore>();
        services.AddSingleton<IDeliveryOutbox, DeliveryOutbox>();
        services.AddSingleton<IEmergencyStopStore, EmergencyStopStore>();
        services.AddSingleton<IIncidentReadModel, IncidentReadModel>();
        services.AddSingleton<IHeartbeatStore, HeartbeatStore>();
        services.AddSingleton<IEnrichmentStore, EnrichmentStore>();
        services.AddEnrichment(builder.Configuration);
        services.AddSingleton<EnrichmentStage>();
        services.AddOptions<PresentationOptions>().BindConfiguration(PresentationOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IncidentPresenter>();
        services.AddSingleton(sp => sp.GetRequiredService<IncidentPresenter>().Naming);
        services.AddOptions<WatchdogOptions>().BindConfiguration(WatchdogOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<WatchdogMonitor>();
        services.AddHostedService(sp => sp.GetRequiredService<WatchdogMonitor>());
        services.AddSingleton<StorageStatus>();
        services.AddSingleton<Router>();
        services.AddSingleton<IncidentProcessor>();
        services.AddSingleton<DeliverySignal>();
        services.AddSingleton<NotificationJournal>();
        services.AddHostedService(sp => sp.GetRequiredService<NotificationJournal>());
        services.AddSingleton<NotificationPublisher>();
        services.AddHostedService(sp => sp.GetRequiredService<NotificationPublisher>());
        services.AddHostedService<DeliveryDispatcher>();
        services.AddHostedService<NotificationRecovery>();

        services.AddSingleton<SlackRenderer>();
        services.AddSingleton<IChannelNotifier, SlackNotifier>();
        services.AddHttpClient<SlackWebApi>((sp, http) =>
        {
            var slack = sp.GetRequiredService<IOptions<SlackOptions>>().Value;
            http.BaseAddress = new Uri(slack.ApiBaseUrl.EndsWith('/') ? slack.ApiBaseUrl : slack.ApiBaseUrl + "/");
            http.Timeout = slack.RequestTimeout;
        });
        services.AddSingleton<SlackLogApi>();
        services.AddSingleton<ISlackApi>(sp => sp.GetRequiredService<IOptions<SlackOptions>>().Value.Enabled
            ? sp.GetRequiredService<SlackWebApi>()
            : sp.GetRequiredService<SlackLogApi>());

        services.AddPagerDutyChannel();
        services.AddEmailChannel();
        services.AddRiskManagerChannel();
        services.AddRunbooks();
        services.AddIncidentActions();

        services.AddAlertingBus(builder.Configuration);
        services.AddSingleton<StorageHealthCheck>(); // one instance: it keeps the probe in flight between checks
        services.AddHealthChecks().AddCheck<StorageHealthCheck>("storage", tags: ["ready"]);
        return builder;
    }

    public static async Task<WebApplication> UseAlertingAsync(this WebApplication app)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("B25.Alerting");
        var storage = app.Services.GetRequiredService<IStorageProvider>();
        var replica = app.Services.GetRequiredService<IOptions<StorageOptions>>().Value.Replica;
        try
        {
            if (storage.Kind == StorageProviderKind.Sqlite)
            {
                // Before the migration, and before any worker (they start in RunAsync): a second process on
                // the same file must change nothing. The container holds the lock until the service is disposed.
                var databaseLock = app.Services.GetRequiredService<DatabaseLock>();
                if (!databaseLock.TryAcquire())
                {
                    LogDatabaseLocked(logger, databaseLock.DatabasePath!, databaseLock.LockPath!);
                    throw new StartRefusedException($"another B25.Alerting process holds {databaseLock.DatabasePath}");
                }
            }
            await storage.MigrateAsync();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Data.Common.DbException
                                       or System.Net.Sockets.SocketException or TimeoutException)
        {
            // A read-only, full or missing folder, or a database that cannot be reached: nothing can be
            // journaled, so do not pretend to serve (an orchestrator restarts the service).
            LogStorageUnusable(logger, storage.Kind, storage.Location, ex.Message);
            throw new StartRefusedException(ex.Message);
        }
        LogStorage(logger, storage.Kind, storage.Location, replica);
        if (!storage.SingleProcess)
        {
            // A call must end within the lease it was started under, or another replica may send behind it.
            var lease = app.Services.GetRequiredService<IOptions<StorageOptions>>().Value.ClaimLease;
            var slowest = new[]
            {
                ("Slack:RequestTimeout", app.Services.GetRequiredService<IOptions<SlackOptions>>().Value.RequestTimeout),
                ("PagerDuty:RequestTimeout", app.Services.GetRequiredService<IOptions<PagerDutyOptions>>().Value.RequestTimeout),
            }.Where(t => t.Item2 >= lease);
            foreach (var (setting, timeout) in slowest) LogTimeoutOverLease(logger, setting, timeout, lease);
        }
        _ = app.Services.GetRequiredService<Router>(); // compile the routes now: a bad route fails the start
        Observability.AlertingMetrics.Initialise(app.Services.GetServices<IChannelNotifier>().Select(c => c.Channel));

        if (string.IsNullOrEmpty(app.Services.GetRequiredService<IOptions<WebhookOptions>>().Value.BearerToken))
            LogNoToken(logger);
        if (!app.Services.GetRequiredService<IOptions<SlackOptions>>().Value.Enabled)
            LogSlackToLog(logger);
        if (string.IsNullOrEmpty(app.Services.GetRequiredService<IOptions<ApiOptions>>().Value.BearerToken))
            LogNoApiToken(logger);

        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseHttpMetrics();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapAlertmanagerWebhook();
        app.MapIncidents();
        app.MapIncidentActions();
        app.MapInteractions();
        app.MapEmergencyStops();
        app.MapRunbooks();
        app.MapMetrics("/metrics");
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteHealth });
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains("ready"), ResponseWriter = WriteHealth });
        // What blackbox-exporter probes (prometheus.yml): the same as ready.
        app.MapHealthChecks("/health", new HealthCheckOptions { Predicate = c => c.Tags.Contains("ready"), ResponseWriter = WriteHealth });
        return app;
    }

    private static Task WriteHealth(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        var body = new Dictionary<string, object>
        {
            ["status"] = report.Status.ToString(),
            ["checks"] = report.Entries.ToDictionary(e => e.Key, e => new { status = e.Value.Status.ToString(), description = e.Value.Description }),
        };
        return context.Response.WriteAsync(JsonSerializer.Serialize(body));
    }

    [LoggerMessage(EventId = 4, Level = LogLevel.Critical, Message = "Storage: cannot write {Provider} {Database} ({Reason}); not starting. SQLite: is its filesystem read-only or full? PostgreSQL: is it up and reachable, and are the credentials right?")]
    private static partial void LogStorageUnusable(ILogger logger, StorageProviderKind provider, string database, string reason);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "{Setting} ({Timeout}) is not shorter than Storage:ClaimLease ({Lease}): a call still running when its lease ends lets another replica send to the same target at the same time. Make the timeout shorter than the lease")]
    private static partial void LogTimeoutOverLease(ILogger logger, string setting, TimeSpan timeout, TimeSpan lease);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Storage: {Provider} {Database}; this replica is {Replica}")]
    private static partial void LogStorage(ILogger logger, StorageProviderKind provider, string database, string replica);

    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "WEBHOOK IS UNAUTHENTICATED: Webhook:BearerToken is empty, so anyone who reaches this port can post notifications. Set it, and the same token in Alertmanager's http_config.authorization")]
    private static partial void LogNoToken(ILogger logger);

    [LoggerMessage(EventId = 7, Level = LogLevel.Warning, Message = "INCIDENT ACTIONS API IS UNAUTHENTICATED: Api:BearerToken is empty, so anyone who reaches this port can acknowledge and silence incidents. Set it")]
    private static partial void LogNoApiToken(ILogger logger);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Slack:BotToken is empty: Slack messages are written to this log instead of Slack")]
    private static partial void LogSlackToLog(ILogger logger);

    [LoggerMessage(EventId = 3, Level = LogLevel.Critical, Message = "Storage: another B25.Alerting process holds {DatabasePath} (lock file {LockPath}); one process per SQLite file.")]
    private static partial void LogDatabaseLocked(ILogger logger, string databasePath, string lockPath);
}
