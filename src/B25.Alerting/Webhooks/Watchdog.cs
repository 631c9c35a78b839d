using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using B25.Alerting.Observability;
using B25.Alerting.Pipeline;
using B25.Alerting.Storage;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Webhooks;

internal sealed class WatchdogOptions
{
    public const string Section = "Watchdog";

    /// <summary>The Alertmanager receiver the always-firing Watchdog alert is routed to (alertmanager.yml).</summary>
    [Required(AllowEmptyStrings = false)]
    public string Receiver { get; set; } = "watchdog";

    /// <summary>No Watchdog for this long (after one was seen) raises AlertingWatchdogMissing.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan MissingAfter { get; set; } = TimeSpan.FromMinutes(3);

    /// <summary>The receiver the alarm is raised as: the routes for it decide who is paged.</summary>
    [Required(AllowEmptyStrings = false)]
    public string AlarmReceiver { get; set; } = "b25-critical";

    /// <summary>How often the monitor looks.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:05:00")]
    public TimeSpan CheckEvery { get; set; } = TimeSpan.FromSeconds(15);
}

/// <summary>
/// The dead-man's switch. Prometheus fires an always-on Watchdog alert; Alertmanager sends it to the
/// Watchdog receiver every minute; the webhook records its arrival (shared by every replica) instead of
/// journaling it. When it stops arriving for Watchdog:MissingAfter, the pipeline in front of the service
/// (Prometheus, Alertmanager, the network between them) is broken: the service raises
/// AlertingWatchdogMissing itself, through its own journal, as if Alertmanager had sent it, and resolves
/// it when the Watchdog is back. Every replica computes the same notification from the shared times, so
/// the journal keeps one copy however many replicas raise it. Before the first Watchdog ever arrives
/// nothing is raised (an installation without the rule stays quiet; the start log says so).
/// </summary>
internal sealed partial class WatchdogMonitor(
    IHeartbeatStore heartbeats,
    NotificationJournal journal,
    NotificationPublisher publisher,
    IOptions<WatchdogOptions> options,
    IOptions<WebhookOptions> webhook,
    TimeProvider time,
    ILogger<WatchdogMonitor> logger) : BackgroundService
{
    internal const string SeenName = "watchdog";
    internal const string AlarmName = "watchdog-alarm";
    internal const string AlertName = "AlertingWatchdogMissing";

    /// <summary>Records a Watchdog arrival (the webhook calls this instead of journaling it).</summary>
    public async Task SeenAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await heartbeats.BeatAsync(SeenName, now.ToUnixTimeMilliseconds(), cancellationToken);
        AlertingMetrics.WatchdogLastSeen.Set(now.ToUnixTimeSeconds());
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var warned = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var seen = await CheckAsync(stoppingToken);
                if (!seen && !warned) LogNeverSeen(options.Value.Receiver);
                warned |= !seen;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogCheckFailed(ex);
            }
            await Task.Delay(options.Value.CheckEvery, time, stoppingToken);
        }
    }

    /// <summary>Raises or resolves the alarm as the shared times say; false when no Watchdog was ever seen.</summary>
    internal async Task<bool> CheckAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var seen = await heartbeats.LastAsync(SeenName, cancellationToken);
        if (seen is null) return false;
        AlertingMetrics.WatchdogLastSeen.Set(seen.Value / 1000.0);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var alarm = await heartbeats.LastAsync(AlarmName, cancellationToken);
        var missingMs = (long)settings.MissingAfter.TotalMilliseconds;
        if (alarm is null && now - seen.Value > missingMs)
        {
            // Starts when the Watchdog became overdue: the same instant in every replica.
            var startsAt = await heartbeats.SetOnceAsync(AlarmName, seen.Value + missingMs, cancellationToken);
            await RaiseAsync(startsAt, null, cancellationToken);
            AlertingMetrics.WatchdogMissing.Set(1);
            LogMissing(settings.MissingAfter, DateTimeOffset.FromUnixTimeMilliseconds(seen.Value));
        }
        else if (alarm is { } since && seen.Value > since)
        {
            await RaiseAsync(since, seen.Value, cancellationToken);
            await heartbeats.ClearAsync(AlarmName, cancellationToken);
            AlertingMetrics.WatchdogMissing.Set(0);
            LogBack(DateTimeOffset.FromUnixTimeMilliseconds(since));
        }
        else
        {
            AlertingMetrics.WatchdogMissing.Set(alarm is null ? 0 : 1);
            if (alarm is { } raised) await RaiseAsync(raised, null, cancellationToken); // a replica that crashed before journaling it: once more (a duplicate is dropped)
        }
        return true;
    }

    /// <summary>Journals the alarm as Alertmanager would send it: firing, or resolved at <paramref name="endsAt"/>.</summary>
    private async Task RaiseAsync(long startsAt, long? endsAt, CancellationToken cancellationToken)
    {
        var body = Body(options.Value, startsAt, endsAt);
        var (notification, error) = NotificationParser.Parse(body);
        if (error is not null) throw new InvalidOperationException($"The Watchdog alarm does not parse: {error}");
        var groupId = NotificationIdentity.GroupId(notification!.Receiver, notification.GroupKey);
        var id = NotificationIdentity.NotificationId(notification);
        var result = await journal.AppendAsync(new JournalEntry(id, groupId, notification.Receiver, notification.GroupKey,
            time.GetUtcNow().ToUnixTimeMilliseconds(), body), webhook.Value.JournalTimeout, cancellationToken);
        if (result == JournalResult.Inserted)
            publisher.Enqueue(new NotificationAccepted(id, groupId, NotificationIdentity.PartitionKey(groupId)));
    }

    internal static byte[] Body(WatchdogOptions settings, long startsAt, long? endsAt)
    {
        static string Time(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'");
        var labels = new Dictionary<string, string>
        {
            ["alertname"] = AlertName,
            ["severity"] = "critical",
            ["service"] = "b25-alerting",
        };
        var annotations = new Dictionary<string, string>
        {
            ["summary"] = $"No Watchdog from Alertmanager for {settings.MissingAfter}: alerts may not be reaching anyone",
            ["description"] = "Prometheus fires the Watchdog alert all the time and Alertmanager sends it here every minute. It stopped arriving: " +
                              "Prometheus, its rule evaluation, Alertmanager or the path from Alertmanager to this service is broken. " +
                              "Until it is back, no other alert can be trusted to page. Check Prometheus (/alerts, Watchdog) and Alertmanager (/#/alerts, its log).",
        };
        var status = endsAt is null ? "firing" : "resolved";
        var document = new Dictionary<string, object>
        {
            ["version"] = "4",
            ["groupKey"] = $"{{}}:{{alertname=\"{AlertName}\"}}",
            ["truncatedAlerts"] = 0,
            ["status"] = status,
            ["receiver"] = settings.AlarmReceiver,
            ["groupLabels"] = new Dictionary<string, string> { ["alertname"] = AlertName },
            ["commonLabels"] = labels,
            ["commonAnnotations"] = annotations,
            ["externalURL"] = "",
            ["alerts"] = new object[]
            {
                new Dictionary<string, object>
                {
                    ["status"] = status,
                    ["labels"] = labels,
                    ["annotations"] = annotations,
                    ["startsAt"] = Time(startsAt),
                    ["endsAt"] = endsAt is { } e ? Time(e) : "0001-01-01T00:00:00Z",
                    ["generatorURL"] = "",
                    ["fingerprint"] = "b25alertingwatchdog",
                },
            },
        };
        return JsonSerializer.SerializeToUtf8Bytes(document, WatchdogJsonContext.Default.DictionaryStringObject);
    }

    [LoggerMessage(EventId = 1301, Level = LogLevel.Critical, Message = "WATCHDOG MISSING: no Watchdog notification for {MissingAfter} (last at {LastSeen:O}); the pipeline in front of this service is broken. AlertingWatchdogMissing raised")]
    private partial void LogMissing(TimeSpan missingAfter, DateTimeOffset lastSeen);

    [LoggerMessage(EventId = 1302, Level = LogLevel.Warning, Message = "Watchdog is back; AlertingWatchdogMissing (raised at {Since:O}) resolved")]
    private partial void LogBack(DateTimeOffset since);

    [LoggerMessage(EventId = 1303, Level = LogLevel.Warning, Message = "No Watchdog notification has ever arrived (receiver {Receiver}): the dead-man's switch is idle until the first one. Route Prometheus' Watchdog alert to that receiver (alertmanager.yml)")]
    private partial void LogNeverSeen(string receiver);

    [LoggerMessage(EventId = 1304, Level = LogLevel.Error, Message = "Watchdog check failed; next try shortly")]
    private partial void LogCheckFailed(Exception ex);
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, object>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, string>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(object[]))]
[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
[System.Text.Json.Serialization.JsonSerializable(typeof(int))]
internal sealed partial class WatchdogJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
