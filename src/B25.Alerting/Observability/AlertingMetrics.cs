using Prometheus;

namespace B25.Alerting.Observability;

/// <summary>The service's own metrics, served at /metrics in Prometheus text format.</summary>
internal static class AlertingMetrics
{
    public static readonly Counter NotificationsReceived = Metrics.CreateCounter(
        "b25_alerting_notifications_received_total", "Alertmanager notifications accepted (journaled, answered 2xx).");

    public static readonly Counter NotificationsRejected = Metrics.CreateCounter(
        "b25_alerting_notifications_rejected_total", "Webhook requests refused, by reason.",
        new CounterConfiguration { LabelNames = ["reason"] });

    public static readonly Counter DuplicatesDropped = Metrics.CreateCounter(
        "b25_alerting_duplicates_dropped_total", "Notifications already journaled (HA peers, retries): nothing delivered.");

    public static readonly Counter Repeats = Metrics.CreateCounter(
        "b25_alerting_repeats_total", "Notifications whose alerts were all known in the same state (repeat_interval): nothing delivered.");

    public static readonly Counter NotificationsProcessed = Metrics.CreateCounter(
        "b25_alerting_notifications_processed_total", "Notifications applied to the incident state machine, by outcome.",
        new CounterConfiguration { LabelNames = ["outcome"] });

    public static readonly Counter NotificationsQuarantined = Metrics.CreateCounter(
        "b25_alerting_notifications_quarantined_total",
        "Journaled notifications that could not be applied after several attempts and were set aside (never retried, nothing delivered).");

    public static readonly Gauge StorageWriteFault = Metrics.CreateGauge(
        "b25_alerting_storage_write_fault",
        "1 while the service cannot write to its storage (a delivery result, a send mark or the readiness probe failed to write), else 0.");

    public static readonly Counter SqliteWriterHeld = Metrics.CreateCounter(
        "b25_alerting_sqlite_writer_busy_seconds_total",
        "Time SQLite's single writer was held by a write transaction of this process (SQLite storage only). Its rate is the writer's utilisation: near 1, every write waits for the one before it and the journal's accept latency and the apply rate suffer.");

    public static readonly Counter SqliteWriterTurns = Metrics.CreateCounter(
        "b25_alerting_sqlite_writer_turns_total", "Write transactions run on SQLite's single writer by this process (SQLite storage only).");

    public static readonly Counter SqliteGroupCommits = Metrics.CreateCounter(
        "b25_alerting_sqlite_group_commits_total",
        "Group commits done by this process (SQLite storage only): several writers' transactions (applying notifications, delivery bookkeeping) committed as one.");

    public static readonly Counter SqliteGroupCommitShares = Metrics.CreateCounter(
        "b25_alerting_sqlite_group_commit_shares_total",
        "Writers' transactions committed in group commits (SQLite storage only). Divided by the group commits: the writers per commit.");

    public static readonly Gauge WatchdogLastSeen = Metrics.CreateGauge(
        "b25_alerting_watchdog_last_seen_timestamp_seconds",
        "When Alertmanager's Watchdog notification last arrived at any replica (unix seconds; 0 when never).");

    public static readonly Gauge WatchdogMissing = Metrics.CreateGauge(
        "b25_alerting_watchdog_missing",
        "1 while the Watchdog has not arrived for Watchdog:MissingAfter and the service's own alarm (AlertingWatchdogMissing) is raised, else 0.");
    public static readonly Counter SlackAuthFailures = Metrics.CreateCounter(
        "b25_alerting_slack_auth_failures_total",
        "Slack Web API calls refused because the bot token does not authenticate (ok:false with invalid_auth, not_authed, account_inactive, token_revoked or token_expired): nothing reaches Slack until the token is replaced.");

    public static readonly Gauge SlackTokenValid = Metrics.CreateGauge(
        "b25_alerting_slack_token_valid",
        "1 while Slack's auth.test accepts the bot token, 0 while Slack refuses it (/health/ready is then Degraded); absent in log-only mode and until Slack first answered.",
        new GaugeConfiguration { SuppressInitialValue = true });

    public static readonly Gauge BuildInfo = Metrics.CreateGauge(
        "b25_alerting_build_info", "Always 1; the labels say which build runs (version, git revision, .NET runtime).",
        new GaugeConfiguration { LabelNames = ["version", "revision", "runtime"] });

    public static readonly Gauge OpenIncidents = Metrics.CreateGauge(
        "b25_alerting_open_incidents",
        "Incidents not closed (open or acknowledged), counted in storage at each scrape: right after a restart, and the same on every replica of one database (use max, not sum, across replicas).");

    public static readonly Counter IncidentsOpened = Metrics.CreateCounter(
        "b25_alerting_incidents_opened_total", "Incidents opened.");

    public static readonly Counter IncidentsClosed = Metrics.CreateCounter(
        "b25_alerting_incidents_closed_total", "Incidents closed (every alert resolved).");

    public static readonly Counter Deliveries = Metrics.CreateCounter(
        "b25_alerting_deliveries_total", "Delivery attempts by channel and outcome (sent, merged, retry, failed).",
        new CounterConfiguration { LabelNames = ["channel", "outcome"] });

    public static readonly Histogram DeliveryLatency = Metrics.CreateHistogram(
        "b25_alerting_delivery_latency_seconds", "Time from accepting a notification to its delivery being sent, by channel.",
        new HistogramConfiguration
        {
            LabelNames = ["channel"],
            Buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
        });

    public static readonly Gauge PendingDeliveries = Metrics.CreateGauge(
        "b25_alerting_pending_deliveries", "Deliveries journaled and not yet sent.");

    public static readonly Gauge BusHeld = Metrics.CreateGauge(
        "b25_alerting_bus_held_notifications",
        "Accepted notifications this process holds in memory for the bus (queued to publish; on the in-memory transport, until applied). At most Bus:MaxHeldNotifications: the rest wait in the journal.");

    public static readonly Counter LeftInJournal = Metrics.CreateCounter(
        "b25_alerting_notifications_left_in_journal_total",
        "Accepted notifications not queued for the bus because Bus:MaxHeldNotifications were held: published from the journal as room frees.");

    public static readonly Gauge BusHealthy = Metrics.CreateGauge(
        "b25_alerting_bus_healthy",
        "RabbitMq transport: 1 while this replica's bus is healthy (connected, its receive endpoints consuming), 0 while not (looked at every second). Absent on the in-memory transport.",
        // Not exposed until first set: a 0 from start-up would read as a bus that is down (AlertingBusDown) where there is none.
        new GaugeConfiguration { SuppressInitialValue = true });

    public static readonly Counter AppliedWithoutBus = Metrics.CreateCounter(
        "b25_alerting_applied_without_bus_total",
        "Journaled notifications this replica applied itself because its RabbitMQ bus was not healthy (Bus:ApplyLocallyAfter), instead of waiting for the bus to hand them over.");

    public static readonly Counter PublishFailures = Metrics.CreateCounter(
        "b25_alerting_bus_publish_failures_total",
        "Publishes of journaled notifications to the bus that failed, including those RabbitMQ returned because no queue was bound to take them: each is published again from the journal.");

    public static readonly Histogram AcceptLatency = Metrics.CreateHistogram(
        "b25_alerting_accept_duration_seconds", "Time to validate and durably journal a notification.",
        new HistogramConfiguration { Buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });

    /// <summary>
    /// Creates every labelled series whose labels are known in advance at 0, so increase() and rate()
    /// see the first event (a series born with its first increment looks like no increase at all).
    /// </summary>
    public static void Initialise(IEnumerable<string> channels)
    {
        foreach (var reason in new[] { "unauthorized", "unsupported_media_type", "too_large", "invalid", "journal_unavailable" })
            NotificationsRejected.WithLabels(reason);
        foreach (var outcome in new[] { "none", "repeat", "opened", "changed", "closed", "quarantined" })
            NotificationsProcessed.WithLabels(outcome);
        foreach (var channel in channels)
            foreach (var outcome in new[] { "sent", "merged", "retry", "failed", "skipped" })
                Deliveries.WithLabels(channel, outcome);
        StorageWriteFault.Set(0);
        var informational = typeof(AlertingMetrics).Assembly
            .GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? "unknown";
        var plus = informational.IndexOf('+');
        BuildInfo.WithLabels(plus < 0 ? informational : informational[..plus], plus < 0 ? "unknown" : informational[(plus + 1)..],
            System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription).Set(1);
    }

    /// <summary>
    /// Counts open incidents in storage just before /metrics is written. A storage that does not answer within a
    /// second keeps the last value (the storage fault has its own metric and alert).
    /// </summary>
    public static IApplicationBuilder CountOpenIncidentsAtScrape(this IApplicationBuilder app, string metricsPath) =>
        app.UseWhen(context => context.Request.Path.Equals(metricsPath, StringComparison.Ordinal), branch => branch.Use(async (context, next) =>
        {
            var counts = context.RequestServices.GetRequiredService<Storage.IncidentCounts>();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
            timeout.CancelAfter(TimeSpan.FromSeconds(1));
            try
            {
                OpenIncidents.Set(await counts.OpenAsync(timeout.Token));
            }
            catch (Exception ex) when (ex is OperationCanceledException or System.Data.Common.DbException or IOException or InvalidOperationException)
            {
            }
            await next(context);
        }));
}
