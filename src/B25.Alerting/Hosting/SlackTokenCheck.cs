using System.Net.Http.Headers;
using System.Text.Json;
using B25.Alerting.Delivery.Slack;
using B25.Alerting.Observability;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Hosting;

/// <summary>
/// Readiness knows whether Slack takes the bot token: Slack's <c>auth.test</c> is asked at start, again every
/// <see cref="RecheckEvery"/>, and at once after a delivery was refused for its token. A refused token makes
/// <c>/health/ready</c> Degraded with Slack's reason, sets <c>b25_alerting_slack_token_valid</c> to 0 and logs
/// one Critical line (once per change, not per probe). Slack not answering is not the token's fault: it
/// changes nothing here (the delivery retries and its own metrics say so).
/// </summary>
internal sealed partial class SlackTokenCheck(
    IHttpClientFactory clients, IOptions<SlackOptions> options, TimeProvider time, ILogger<SlackTokenCheck> logger) : IHealthCheck
{
    /// <summary>
    /// The delivery's own client (the typed SlackWebApi's name): auth.test at start opens the connection the first post
    /// then reuses, so the first page does not pay for it (connect, TLS).
    /// </summary>
    public const string Client = nameof(SlackWebApi);

    public static readonly TimeSpan RecheckEvery = TimeSpan.FromMinutes(5);

    private readonly SemaphoreSlim _one = new(1, 1);
    private DateTimeOffset _nextCheck = DateTimeOffset.MinValue;
    private double _authFailuresSeen = AlertingMetrics.SlackAuthFailures.Value;
    private volatile string? _refused; // Slack's error for the token, or null while it is accepted (or not known)
    private volatile string? _workspace;
    private readonly TaskCompletionSource _firstAnswered = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once auth.test was first asked and answered (or not answered), or at once when Slack is off.</summary>
    public Task FirstAnswered => options.Value.Enabled ? _firstAnswered.Task : Task.CompletedTask;

    /// <summary>Slack not answering: ask again after this, not at every probe.</summary>
    public static readonly TimeSpan RetryUnanswered = TimeSpan.FromSeconds(30);

    /// <summary>The state known now; a probe never waits for Slack (a slow Slack must not fail readiness probes).</summary>
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!options.Value.Enabled) return Task.FromResult(HealthCheckResult.Healthy("Slack:BotToken is empty: Slack messages go to the log"));
        if (Due) _ = Task.Run(() => RefreshAsync(CancellationToken.None), CancellationToken.None);
        return Task.FromResult(_refused is { } error
            ? HealthCheckResult.Degraded($"Slack refuses the bot token (auth.test: {error}): nothing reaches Slack until Slack:BotToken is replaced")
            : HealthCheckResult.Healthy(_workspace is null ? "Slack token not checked yet" : $"Slack token accepted ({_workspace})"));
    }

    /// <summary>The last answer is old, or a delivery was refused for its token since.</summary>
    public bool Due => options.Value.Enabled
                       && (time.GetUtcNow() >= _nextCheck || AlertingMetrics.SlackAuthFailures.Value != _authFailuresSeen);

    /// <summary>Asks auth.test when <see cref="Due"/>; one question at a time.</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        if (!Due || !await _one.WaitAsync(0, cancellationToken)) return;
        try
        {
            _authFailuresSeen = AlertingMetrics.SlackAuthFailures.Value;
            var answer = await AskAsync(cancellationToken);
            if (answer is null)
            {
                _nextCheck = time.GetUtcNow() + RetryUnanswered; // Slack did not answer: keep what is known
                return;
            }
            _nextCheck = time.GetUtcNow() + RecheckEvery;
            if (answer.Value.Ok)
            {
                if (_refused is not null) LogAccepted(logger, answer.Value.Workspace);
                _refused = null;
                _workspace = answer.Value.Workspace;
                AlertingMetrics.SlackTokenValid.Set(1);
            }
            else
            {
                if (_refused != answer.Value.Error) LogRefused(logger, answer.Value.Error);
                _refused = answer.Value.Error;
                AlertingMetrics.SlackTokenValid.Set(0);
            }
        }
        finally
        {
            _firstAnswered.TrySetResult();
            _one.Release();
        }
    }

    private async Task<(bool Ok, string Error, string Workspace)?> AskAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "auth.test");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", options.Value.BotToken);
            using var response = await clients.CreateClient(Client).SendAsync(request, cancellationToken);
            if (!response.IsSuccessStatusCode) return null;
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
            var root = json.RootElement;
            var ok = root.TryGetProperty("ok", out var o) && o.ValueKind == JsonValueKind.True;
            var error = root.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.String ? e.GetString()! : "unknown_error";
            var team = root.TryGetProperty("team", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "";
            var user = root.TryGetProperty("user", out var u) && u.ValueKind == JsonValueKind.String ? u.GetString()! : "";
            return (ok, error, $"workspace '{team}', bot '{user}'");
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException && !cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    [LoggerMessage(EventId = 7001, Level = LogLevel.Critical, Message = "SLACK REFUSES THE BOT TOKEN (auth.test: {Error}): no page reaches Slack until Slack:BotToken is replaced; /health/ready is Degraded")]
    private static partial void LogRefused(ILogger logger, string error);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Information, Message = "Slack accepts the bot token again ({Workspace})")]
    private static partial void LogAccepted(ILogger logger, string workspace);
}

/// <summary>Asks Slack about the token at start, so a bad token is loud before the first page, then whenever it is due.</summary>
internal sealed class SlackTokenWatch(SlackTokenCheck check, TimeProvider time) : BackgroundService
{
    private static readonly TimeSpan Every = TimeSpan.FromSeconds(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            using var timer = new PeriodicTimer(Every, time);
            do
            {
                await check.RefreshAsync(stoppingToken);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
