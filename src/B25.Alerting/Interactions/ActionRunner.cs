using System.Text.Json.Nodes;
using System.Threading.Channels;
using B25.Alerting.Incidents;
using B25.Alerting.Storage;

namespace B25.Alerting.Interactions;

/// <summary>
/// Slack's ephemeral answers: a POST to the click's <c>response_url</c>, seen only by the person who clicked. The URL is
/// a credential of its own: never logged.
/// </summary>
internal sealed partial class SlackResponder(HttpClient http, ILogger<SlackResponder> logger)
{
    public async Task EphemeralAsync(string responseUrl, string text, CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(responseUrl, UriKind.Absolute, out var url) || url.Scheme is not ("https" or "http")) return;
        var body = new JsonObject { ["response_type"] = "ephemeral", ["replace_original"] = false, ["text"] = text };
        try
        {
            using var response = await http.PostAsync(url, new StringContent(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json"),
                cancellationToken);
            InteractionMetrics.Responses.WithLabels(response.IsSuccessStatusCode ? "ok" : "failed").Inc();
            if (!response.IsSuccessStatusCode) LogFailed((int)response.StatusCode);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            InteractionMetrics.Responses.WithLabels("failed").Inc();
            LogFailed(0);
        }
    }

    [LoggerMessage(EventId = 6402, Level = LogLevel.Warning, Message = "Slack did not take an ephemeral answer (status {Status}); the clicking user sees the message only")]
    private partial void LogFailed(int status);
}

/// <summary>
/// Work that follows an answered request (Slack wants its answer within 3 seconds): the Alertmanager call of a silence,
/// the ephemeral answer. And the recovery of actions a stopped process left pending.
/// </summary>
internal sealed partial class ActionRunner(IncidentActions actions, IIncidentActionStore store, TimeProvider time, ILogger<ActionRunner> logger)
    : BackgroundService
{
    /// <summary>An action pending longer than this was left by a process that stopped (a call takes seconds).</summary>
    private static readonly TimeSpan Abandoned = TimeSpan.FromMinutes(2);

    private readonly Channel<Func<CancellationToken, Task>> _work = Channel.CreateUnbounded<Func<CancellationToken, Task>>();

    public void Enqueue(Func<CancellationToken, Task> work) => _work.Writer.TryWrite(work);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _ = RecoverLoopAsync(stoppingToken);
        try
        {
            await foreach (var work in _work.Reader.ReadAllAsync(stoppingToken))
                _ = RunAsync(work, stoppingToken); // one slow Alertmanager must not hold up the next click
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping (or a start that failed): not an error of this service.
        }
    }

    private async Task RunAsync(Func<CancellationToken, Task> work, CancellationToken stoppingToken)
    {
        try
        {
            await work(stoppingToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
        {
            // The action stays pending; the recovery finishes it.
            LogWorkFailed(ex);
        }
    }

    private async Task RecoverLoopAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                foreach (var row in await store.PendingBeforeAsync((time.GetUtcNow() - Abandoned).ToUnixTimeMilliseconds(), stoppingToken))
                {
                    LogRecovering(row.Id, row.Action, row.IncidentId);
                    await actions.RecoverAsync(row, stoppingToken);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                LogWorkFailed(ex);
            }
            try
            {
                await Task.Delay(TimeSpan.FromMinutes(1), time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    [LoggerMessage(EventId = 6403, Level = LogLevel.Error, Message = "An incident action's follow-up work failed; the action stays pending and is finished by the recovery")]
    private partial void LogWorkFailed(Exception ex);

    [LoggerMessage(EventId = 6404, Level = LogLevel.Warning, Message = "Action {ActionId} ({Action} of incident {IncidentId}) was left pending by a process that stopped: finishing it")]
    private partial void LogRecovering(long actionId, string action, string incidentId);
}

internal static class InteractionMetrics
{
    public static readonly global::Prometheus.Counter Responses = global::Prometheus.Metrics.CreateCounter(
        "b25_alerting_slack_ephemeral_answers_total", "Ephemeral answers posted to a click's response_url, by outcome (ok, failed).",
        new global::Prometheus.CounterConfiguration { LabelNames = ["outcome"] });

    public static readonly global::Prometheus.Counter Interactions = global::Prometheus.Metrics.CreateCounter(
        "b25_alerting_slack_interactions_total",
        "Signed Slack interactions taken, by action_id (acknowledge, silence, unsilence, runbook, grafana, other) and outcome (recorded, not_allowed, ignored, invalid).",
        new global::Prometheus.CounterConfiguration { LabelNames = ["action", "outcome"] });

    public static readonly global::Prometheus.Counter PagerDutyWebhooks = global::Prometheus.Metrics.CreateCounter(
        "b25_alerting_pagerduty_webhooks_total",
        "Signed PagerDuty webhook events taken, by event type (incident.acknowledged, incident.resolved, other) and outcome (recorded, shown, unknown_incident, ignored, invalid).",
        new global::Prometheus.CounterConfiguration { LabelNames = ["event", "outcome"] });
}
