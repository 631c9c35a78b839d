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
using B25.Alerting.Observability;
using Prometheus;

namespace B25.Alerting.Hosting;

internal static partial class AlertingServiceExtensions
{
    /// <summary>The one .NET meter exported on /metrics: the runtime's.</summary>
    internal const string ExportedMeter = "System.Runtime";

    public static WebApplicationBuilder AddAlerting(this WebApplicationBuilder builder)
    {
        // Before any storage work: large C heap blocks (SQLite's copies of a storm's body) go back to the OS when freed.
        NativeHeap.ReturnLargeBlocks();

        // The console, formatted as Logging:Console:FormatterName says: compact (one JSON object per line, what
        // Promtail reads) by default, simple (readable) in Development (appsettings.Development.json).
        builder.Logging.ClearProviders();
        builder.Logging.AddConsole();
        builder.Logging.AddConsoleFormatter<Observability.CompactJsonConsoleFormatter, Microsoft.Extensions.Logging.Console.ConsoleFormatterOptions>();

        // Of the .NET meters, only the runtime's (System.Runtime: GC, JIT, thread pool, exceptions) reaches /metrics
        // through prometheus-net's adapter. The libraries' meters record a measurement per request, message or command,
        // each a label lookup in the adapter, and nothing reads them: ASP.NET Core's and Kestrel's duplicate the HTTP
        // metrics of the contract (HttpRequestMetrics), HttpClient's, MassTransit's and Npgsql's (about 9 % of the
        // service's CPU under load by itself) are not watched, and the runtime's private diagnostics meters
        // (private_internaldiagnostics_* msquic gauges) are not a public contract. The adapter took about 2 % of the
        // service's CPU while new incidents came in (docs/benchmarks.md).
        Metrics.ConfigureMeterAdapter(o => o.InstrumentFilterPredicate = instrument => instrument.Meter.Name == ExportedMeter);

        var services = builder.Services;
        // Before anything reads a section: a value that does not convert is named, not thrown from deep inside.
        services.AddSingleton(SettingsCheck.Check(builder.Configuration));
        ListenAddresses.UseDefaultUnlessConfigured(builder);
        services.AddAlertingTracing(builder.Configuration);
        services.AddProblemDetails();
        services.AddSingleton(TimeProvider.System);

        services.AddOptions<WebhookOptions>().BindConfiguration(WebhookOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<StorageOptions>().BindConfiguration(StorageOptions.Section).ValidateDataAnnotations().ValidateOnStart()
            .PostConfigure(o => o.ConnectionString = SqliteLocation.Anchor(o.Provider, o.ConnectionString, AppContext.BaseDirectory));
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
        services.AddSingleton<IncidentCounts>();
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
        // Two writers on a shared store (PostgreSQL: a batch's round trips overlap the next one's), one on SQLite's single writer.
        services.AddSingleton(sp => new NotificationJournal(sp.GetRequiredService<IJournalStore>(), sp.GetRequiredService<IOptions<WebhookOptions>>(),
            sp.GetRequiredService<StorageStatus>(), sp.GetRequiredService<ILogger<NotificationJournal>>(),
            writers: sp.GetRequiredService<IStorageProvider>().SingleProcess ? 1 : 2));
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
        services.AddSingleton<ServiceExit>();
        services.AddHostedService(sp => ActivatorUtilities.CreateInstance<BusStartWatch>(sp, sp.GetRequiredService<MassTransit.IBusControl>()));
        services.AddHostedService(sp => ActivatorUtilities.CreateInstance<ApplyWithoutBus>(sp, sp.GetRequiredService<MassTransit.IBusControl>()));
        services.AddSingleton<StorageHealthCheck>(); // one instance: it keeps the probe in flight between checks
        // SlackTokenCheck.Client is SlackWebApi's typed client (configured above): its auth.test warms the delivery's connection.
        services.AddSingleton<SlackTokenCheck>();
        services.AddHostedService<SlackTokenWatch>();
        services.AddSingleton<WarmUpRequests>();
        services.AddSingleton<StartupWarmUp>();
        services.AddHostedService(sp => sp.GetRequiredService<StartupWarmUp>());
        foreach (var step in StartupWarmUp.Steps()) services.AddSingleton(step);
        services.AddHealthChecks()
            .AddCheck<WarmUpHealthCheck>("warm-up", tags: ["ready"])
            .AddCheck<StorageHealthCheck>("storage", tags: ["ready"])
            .AddCheck<SlackTokenCheck>("slack", tags: ["ready"]);
        return builder;
    }

    public static async Task<WebApplication> UseAlertingAsync(this WebApplication app)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("B25.Alerting");
        CheckSettings(app, logger);
        // Bind-check before storage: a second instance started by mistake must not open the database nor start workers.
        if (ListenAddresses.FindInUse(app.Configuration) is { } inUse)
        {
            LogAddressInUse(logger, inUse);
            throw new StartRefusedException($"{inUse} is in use");
        }
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
        Router router;
        try
        {
            router = app.Services.GetRequiredService<Router>(); // compile the routes now: a bad route fails the start
        }
        catch (OptionsValidationException ex)
        {
            LogSettingsRefused(logger, string.Join("; ", ex.Failures));
            throw new StartRefusedException(ex.Message);
        }
        var summary = StartSummary.Describe(app.Services, storage, replica, router);
        app.Lifetime.ApplicationStarted.Register(() => LogStarted(logger, string.Join(", ", app.Urls), summary));
        Observability.AlertingMetrics.Initialise(app.Services.GetServices<IChannelNotifier>().Select(c => c.Channel));

        if (string.IsNullOrEmpty(app.Services.GetRequiredService<IOptions<WebhookOptions>>().Value.BearerToken))
            LogNoToken(logger);
        if (!app.Services.GetRequiredService<IOptions<SlackOptions>>().Value.Enabled)
            LogSlackToLog(logger);
        if (string.IsNullOrEmpty(app.Services.GetRequiredService<IOptions<ApiOptions>>().Value.BearerToken))
            LogNoApiToken(logger);

        app.UseHttpRequestMetrics(); // outside the exception handler: it counts the 500 the handler answers
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseAuthentication();
        app.UseAuthorization();
        app.CountOpenIncidentsAtScrape("/metrics");
        app.MapHome();
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

    /// <summary>A setting that does not convert or breaks a rule: one line naming key, value and what is allowed; exit 1.</summary>
    private static void CheckSettings(WebApplication app, ILogger logger)
    {
        var report = app.Services.GetRequiredService<SettingsReport>();
        if (report.Errors.Count > 0)
        {
            LogSettingsRefused(logger, string.Join("; ", report.Errors));
            throw new StartRefusedException(report.ErrorLine);
        }
        try
        {
            // The rules that need more than one section (routes against channels, Smtp:To, Service:PublicUrl).
            app.Services.GetRequiredService<IStartupValidator>().Validate();
        }
        catch (Exception ex) when (ex is OptionsValidationException or AggregateException)
        {
            var failures = ex is AggregateException aggregate
                ? aggregate.InnerExceptions.OfType<OptionsValidationException>().SelectMany(e => e.Failures)
                : ((OptionsValidationException)ex).Failures;
            LogSettingsRefused(logger, string.Join("; ", failures));
            throw new StartRefusedException(ex.Message);
        }
        foreach (var key in report.UnknownKeys) LogUnknownKey(logger, key, key.Replace(":", "__"));
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

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "B25.Alerting started: listening on {Urls}; {Summary}")]
    private static partial void LogStarted(ILogger logger, string urls, string summary);

    [LoggerMessage(EventId = 7, Level = LogLevel.Critical, Message = "Settings: {Errors} (not starting)")]
    private static partial void LogSettingsRefused(ILogger logger, string errors);

    [LoggerMessage(EventId = 8, Level = LogLevel.Warning, Message = "Settings: unknown key {Key} (environment variable {Variable}) is ignored: a typo? The keys each section takes are in README.md, Configuration")]
    private static partial void LogUnknownKey(ILogger logger, string key, string variable);

    [LoggerMessage(EventId = 9, Level = LogLevel.Critical, Message = "Cannot listen on {Url}: the address is in use (another B25.Alerting?); not starting. Choose another with ASPNETCORE_URLS or ASPNETCORE_HTTP_PORTS")]
    private static partial void LogAddressInUse(ILogger logger, string url);

    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "WEBHOOK IS UNAUTHENTICATED: Webhook:BearerToken is empty, so anyone who reaches this port can post notifications. Set it, and the same token in Alertmanager's http_config.authorization")]
    private static partial void LogNoToken(ILogger logger);

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "The incident actions API (POST /api/incidents/{{id}}/acknowledge|silence|unsilence) is off: Api:BearerToken is empty")]
    private static partial void LogNoApiToken(ILogger logger);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Slack:BotToken is empty: Slack messages are written to this log instead of Slack")]
    private static partial void LogSlackToLog(ILogger logger);

    [LoggerMessage(EventId = 3, Level = LogLevel.Critical, Message = "Storage: another B25.Alerting process holds {DatabasePath} (lock file {LockPath}); one process per SQLite file.")]
    private static partial void LogDatabaseLocked(ILogger logger, string databasePath, string lockPath);
}
