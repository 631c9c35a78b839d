using System.Diagnostics;
using B25.Alerting.Enrichment.Grafana;
using B25.Alerting.Enrichment.Logs;
using B25.Alerting.Enrichment.PromQl;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Enrichment;

/// <summary>The enrichment stage: context for one incident revision, within <c>Enrichment:Timeout</c>.</summary>
internal interface IIncidentEnricher
{
    /// <summary>
    /// Queries the configured sources concurrently and returns what they answered by the deadline. Never throws
    /// for a source's sake (down, slow, refusing): the result says what is missing and why. Throws
    /// <see cref="OperationCanceledException"/> only when <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    Task<IncidentEnrichment> EnrichAsync(EnrichmentRequest request, CancellationToken cancellationToken);
}

/// <summary>
/// Runs the sources (PromQL context, logs, Grafana links) side by side under one deadline. Cost is bounded per
/// incident whatever its size: alerts sharing an expression share one range query (each alert picks its own
/// series from the answer), distinct queries are capped per source, and answers are shared for a short while
/// between revisions and incidents (<see cref="QueryCache{T}"/>).
/// </summary>
internal sealed partial class IncidentEnricher : IIncidentEnricher
{
    private readonly EnrichmentOptions _options;
    private readonly PrometheusOptions _prometheus;
    private readonly LokiOptions _loki;
    private readonly GrafanaOptions _grafana;
    private readonly PrometheusQueryClient _prometheusClient;
    private readonly LokiQueryClient _lokiClient;
    private readonly TimeProvider _time;
    private readonly ILogger<IncidentEnricher> _logger;
    private readonly QueryCache<PromRange> _ranges;
    private readonly QueryCache<LokiLines> _lines;
    // Under a storm with a source down every enrichment fails the same way: one warning per source per interval.
    private readonly LogLimiter _prometheusWarnings;
    private readonly LogLimiter _lokiWarnings;
    private readonly SourceDownMark _prometheusDown;
    private readonly SourceDownMark _lokiDown;

    public IncidentEnricher(IOptions<EnrichmentOptions> options, IOptions<PrometheusOptions> prometheus, IOptions<LokiOptions> loki,
        IOptions<GrafanaOptions> grafana, PrometheusQueryClient prometheusClient, LokiQueryClient lokiClient, TimeProvider time,
        ILogger<IncidentEnricher> logger)
    {
        _options = options.Value;
        _prometheus = prometheus.Value;
        _loki = loki.Value;
        _grafana = grafana.Value;
        _prometheusClient = prometheusClient;
        _lokiClient = lokiClient;
        _time = time;
        _logger = logger;
        _ranges = new QueryCache<PromRange>(time, _options.CacheFor);
        _lines = new QueryCache<LokiLines>(time, _options.CacheFor);
        _prometheusWarnings = new LogLimiter(time, TimeSpan.FromSeconds(10));
        _lokiWarnings = new LogLimiter(time, TimeSpan.FromSeconds(10));
        _prometheusDown = new SourceDownMark("Prometheus", time);
        _lokiDown = new SourceDownMark("Loki", time);
    }

    /// <summary>The range query step: the window over <c>Enrichment:Points</c>, in whole seconds.</summary>
    public TimeSpan Step => TimeSpan.FromSeconds(Math.Max(1, Math.Round(_options.Window.TotalSeconds / _options.Points)));

    public async Task<IncidentEnrichment> EnrichAsync(EnrichmentRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var started = _time.GetTimestamp();
        var now = _time.GetUtcNow();
        using var deadline = new CancellationTokenSource(_options.Timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var run = new Run(request, now, linked.Token, cancellationToken);

        var metrics = _prometheus.Enabled ? MetricsAsync(run) : Task.FromResult(DisabledMetrics(request));
        var logs = _loki.Enabled ? LogsAsync(run) : Task.FromResult((new Dictionary<string, ServiceLogs>(StringComparer.Ordinal), SourceStatus.Disabled));
        var (links, grafanaStatus) = GrafanaLinksFor(request);
        await Task.WhenAll(metrics, logs);
        cancellationToken.ThrowIfCancellationRequested();

        var (alertContexts, prometheusStatus) = await metrics;
        var (serviceLogs, lokiStatus) = await logs;
        var enrichment = new IncidentEnrichment(
            request.IncidentId,
            now,
            Math.Round(_time.GetElapsedTime(started).TotalMilliseconds, 1),
            new EnrichmentSources(prometheusStatus, lokiStatus, grafanaStatus),
            alertContexts,
            serviceLogs,
            links);
        LogEnriched(_logger, request.IncidentId, request.Alerts.Count, enrichment.DurationMs, prometheusStatus.State, lokiStatus.State);
        return enrichment;
    }

    private sealed record Run(EnrichmentRequest Request, DateTimeOffset Now, CancellationToken Deadline, CancellationToken Caller);

    // ---- PromQL context ----------------------------------------------------------------------------------

    private sealed record ExpressionGroup(PromQlQuery Query, List<EnrichmentAlert> Alerts);

    private async Task<(Dictionary<string, AlertMetricContext>, SourceStatus)> MetricsAsync(Run run)
    {
        var started = _time.GetTimestamp();
        var contexts = new Dictionary<string, AlertMetricContext>(StringComparer.Ordinal);
        var groups = new Dictionary<string, ExpressionGroup>(StringComparer.Ordinal);
        var considered = 0;
        foreach (var alert in FiringFirst(run.Request.Alerts))
        {
            if (contexts.ContainsKey(alert.Fingerprint)) continue;
            var seed = Seed(alert, run.Request.GroupLabels);
            if (considered++ >= _options.MaxAlerts)
            {
                contexts[alert.Fingerprint] = seed with { Reason = $"PromQL context is given to the first {_options.MaxAlerts} alerts of an incident (Enrichment:MaxAlerts)" };
                continue;
            }
            var query = PromQlExpression.FromAlert(alert.GeneratorUrl);
            if (query is null)
            {
                contexts[alert.Fingerprint] = seed with
                {
                    State = ContextState.NoExpression,
                    Reason = string.IsNullOrWhiteSpace(alert.GeneratorUrl)
                        ? "the alert has no generatorURL"
                        : "no PromQL expression could be read from the alert's generatorURL",
                };
                continue;
            }
            contexts[alert.Fingerprint] = seed with { Expression = query.Expression, QueriedExpression = query.Queried, Threshold = query.Threshold };
            if (!groups.TryGetValue(query.Queried, out var group))
                groups[query.Queried] = group = new ExpressionGroup(query, []);
            group.Alerts.Add(alert);
        }

        var end = run.Now;
        var start = end - _options.Window;
        var step = Step;
        var sent = 0;
        var hits = 0;
        var skipped = 0;
        var pending = new List<(ExpressionGroup Group, Task<QueryOutcome<PromRange>> Outcome)>();
        // The expressions of firing alerts first, then those that serve the most alerts.
        foreach (var group in groups.Values.OrderByDescending(g => g.Alerts.Any(a => a.IsFiring)).ThenByDescending(g => g.Alerts.Count))
        {
            var key = $"{group.Query.Queried}\n{_options.Window.Ticks}\n{step.Ticks}";
            // An answer asked before one of these alerts started would show the series before it fired.
            var askedSince = group.Alerts.Where(a => a.IsFiring).Select(a => (DateTimeOffset?)a.StartsAt).Max();
            if (_ranges.TryGet(key, askedSince) is { } cached)
            {
                hits++;
                pending.Add((group, cached));
                continue;
            }
            if (sent >= _options.MaxPrometheusQueries)
            {
                skipped++;
                foreach (var alert in group.Alerts)
                    contexts[alert.Fingerprint] = contexts[alert.Fingerprint] with
                    {
                        State = ContextState.Skipped,
                        Reason = $"this incident's {_options.MaxPrometheusQueries} PromQL queries (Enrichment:MaxPrometheusQueries) went to other expressions",
                    };
                continue;
            }
            var (outcome, isNew) = _ranges.GetOrStart(key, () => FetchRangeAsync(group.Query.Queried, start, end, step), askedSince);
            if (isNew) sent++;
            else hits++;
            pending.Add((group, outcome));
        }

        var timeouts = 0;
        string? error = null;
        foreach (var (group, task) in pending)
        {
            var outcome = await WaitAsync(task, run, EnrichmentMetrics.Prometheus);
            if (outcome.Value is { } range)
            {
                foreach (var alert in group.Alerts)
                    contexts[alert.Fingerprint] = MetricContextBuilder.Build(contexts[alert.Fingerprint], alert.Labels, group.Query, range, _options.SparklineWidth);
                continue;
            }
            var (state, reason) = outcome.Failure switch
            {
                FailureReason.Timeout => (ContextState.Timeout, $"Prometheus did not answer within {Ms(_options.Timeout)}"),
                FailureReason.QueryError => (ContextState.Error, $"Prometheus refused the query: {outcome.Error}"),
                _ => (ContextState.Error, $"Prometheus: {outcome.Error}"),
            };
            if (outcome.Failure == FailureReason.Timeout) timeouts++;
            else if (outcome.Failure != FailureReason.QueryError) error ??= outcome.Error;
            // Here too, not only where the query ends: this run stopped waiting at its deadline, maybe before the query did.
            _prometheusDown.Note(outcome.Failure);
            foreach (var alert in group.Alerts)
                contexts[alert.Fingerprint] = contexts[alert.Fingerprint] with { State = state, Reason = reason };
        }

        EnrichmentMetrics.Duration.WithLabels(EnrichmentMetrics.Prometheus).Observe(_time.GetElapsedTime(started).TotalSeconds);
        if (hits > 0) EnrichmentMetrics.CacheHits.WithLabels(EnrichmentMetrics.Prometheus).Inc(hits);
        if (skipped > 0) EnrichmentMetrics.Skipped.WithLabels(EnrichmentMetrics.Prometheus).Inc(skipped);
        return (contexts, Status(timeouts, pending.Count, error, sent, hits, skipped, EnrichmentMetrics.Prometheus, run));
    }

    private async Task<QueryOutcome<PromRange>> FetchRangeAsync(string expression, DateTimeOffset start, DateTimeOffset end, TimeSpan step)
    {
        if (_prometheusDown.Refusal<PromRange>() is { } refusal) return refusal;
        // Its own deadline, not the first caller's: the answer may serve other incidents (see QueryCache).
        using var timeout = new CancellationTokenSource(_options.Timeout, _time);
        EnrichmentMetrics.Queries.WithLabels(EnrichmentMetrics.Prometheus).Inc();
        QueryOutcome<PromRange> outcome;
        try
        {
            outcome = new QueryOutcome<PromRange>(await _prometheusClient.QueryRangeAsync(expression, start, end, step, _options.Timeout, timeout.Token));
        }
        catch (SourceException ex)
        {
            outcome = QueryOutcome<PromRange>.Failed(ex.Reason, ex.Message);
        }
        catch (OperationCanceledException)
        {
            outcome = QueryOutcome<PromRange>.Failed(FailureReason.Timeout, $"no answer within {Ms(_options.Timeout)}");
        }
        _prometheusDown.Note(outcome.Failure);
        return outcome;
    }

    private Dictionary<string, AlertMetricContext> DisabledMetricContexts(EnrichmentRequest request)
    {
        var contexts = new Dictionary<string, AlertMetricContext>(StringComparer.Ordinal);
        foreach (var alert in request.Alerts)
            contexts.TryAdd(alert.Fingerprint, Seed(alert, request.GroupLabels) with
            {
                State = ContextState.Disabled,
                Reason = "Prometheus:Url is not set",
            });
        return contexts;
    }

    private (Dictionary<string, AlertMetricContext>, SourceStatus) DisabledMetrics(EnrichmentRequest request) =>
        (DisabledMetricContexts(request), SourceStatus.Disabled);

    private static AlertMetricContext Seed(EnrichmentAlert alert, IReadOnlyDictionary<string, string> groupLabels)
    {
        var distinguishing = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in alert.Labels)
            if (name != "alertname" && !(groupLabels.TryGetValue(name, out var common) && common == value))
                distinguishing[name] = value;
        return new AlertMetricContext(alert.Fingerprint, alert.AlertName, distinguishing, alert.StartsAt, ContextState.Skipped);
    }

    // ---- logs ---------------------------------------------------------------------------------------------

    private async Task<(Dictionary<string, ServiceLogs>, SourceStatus)> LogsAsync(Run run)
    {
        var started = _time.GetTimestamp();
        var logs = new Dictionary<string, ServiceLogs>(StringComparer.Ordinal);
        var sent = 0;
        var hits = 0;
        var skipped = 0;
        var pending = new List<(string Service, string Query, DateTimeOffset From, DateTimeOffset To, Task<QueryOutcome<LokiLines>> Outcome)>();
        var services = run.Request.Alerts.Where(a => a.Service is not null).GroupBy(a => a.Service!, StringComparer.Ordinal)
            .OrderByDescending(g => g.Any(a => a.IsFiring)).ThenByDescending(g => g.Count());
        foreach (var service in services)
        {
            var query = LogQl.ForService(service.Key, _loki);
            var from = service.Min(a => a.StartsAt) - _options.LogsBefore;
            // Up to a little after the latest start, or now if sooner (rounded up to 10 s, so the next
            // revision asks the same question and is answered from the cache).
            var to = Min(service.Max(a => a.StartsAt) + _options.LogsAfter, RoundUp(run.Now, TimeSpan.FromSeconds(10)));
            if (to <= from) to = from + TimeSpan.FromSeconds(1);
            var key = $"{query}\n{from.ToUnixTimeMilliseconds()}\n{to.ToUnixTimeMilliseconds()}\n{_options.LogLines}";
            if (_lines.TryGet(key) is { } cached)
            {
                hits++;
                pending.Add((service.Key, query, from, to, cached));
                continue;
            }
            if (sent >= _options.MaxLokiQueries)
            {
                skipped++;
                logs[service.Key] = new ServiceLogs(service.Key, ContextState.Skipped,
                    $"this incident's {_options.MaxLokiQueries} Loki queries (Enrichment:MaxLokiQueries) went to other services", query, from, to, []);
                continue;
            }
            var (outcome, isNew) = _lines.GetOrStart(key, () => FetchLinesAsync(query, from, to));
            if (isNew) sent++;
            else hits++;
            pending.Add((service.Key, query, from, to, outcome));
        }

        var timeouts = 0;
        string? error = null;
        foreach (var (service, query, from, to, task) in pending)
        {
            var outcome = await WaitAsync(task, run, EnrichmentMetrics.Loki);
            if (outcome.Value is { } answer)
            {
                var lines = answer.Entries.Select(e =>
                {
                    var (line, truncated) = LogQl.Truncate(e.Line, _loki.MaxLineLength);
                    return new LogLine(FromUnixNanos(e.UnixNanos), line, e.StreamLabels.GetValueOrDefault(_loki.LevelLabel), truncated);
                }).ToList();
                logs[service] = lines.Count > 0
                    ? new ServiceLogs(service, ContextState.Ok, null, query, from, to, lines)
                    : new ServiceLogs(service, ContextState.NoData, "no warn/error lines in the window", query, from, to, lines);
                continue;
            }
            if (outcome.Failure == FailureReason.Timeout) timeouts++;
            else error ??= outcome.Error;
            // Here too, not only where the query ends: this run stopped waiting at its deadline, maybe before the query did.
            _lokiDown.Note(outcome.Failure);
            logs[service] = outcome.Failure == FailureReason.Timeout
                ? new ServiceLogs(service, ContextState.Timeout, $"Loki did not answer within {Ms(_options.Timeout)}", query, from, to, [])
                : new ServiceLogs(service, ContextState.Error, $"Loki: {outcome.Error}", query, from, to, []);
        }

        EnrichmentMetrics.Duration.WithLabels(EnrichmentMetrics.Loki).Observe(_time.GetElapsedTime(started).TotalSeconds);
        if (hits > 0) EnrichmentMetrics.CacheHits.WithLabels(EnrichmentMetrics.Loki).Inc(hits);
        if (skipped > 0) EnrichmentMetrics.Skipped.WithLabels(EnrichmentMetrics.Loki).Inc(skipped);
        return (logs, Status(timeouts, pending.Count, error, sent, hits, skipped, EnrichmentMetrics.Loki, run));
    }

    private async Task<QueryOutcome<LokiLines>> FetchLinesAsync(string query, DateTimeOffset from, DateTimeOffset to)
    {
        if (_lokiDown.Refusal<LokiLines>() is { } refusal) return refusal;
        using var timeout = new CancellationTokenSource(_options.Timeout, _time);
        EnrichmentMetrics.Queries.WithLabels(EnrichmentMetrics.Loki).Inc();
        QueryOutcome<LokiLines> outcome;
        try
        {
            outcome = new QueryOutcome<LokiLines>(await _lokiClient.QueryRangeAsync(query, from, to, _options.LogLines, timeout.Token));
        }
        catch (SourceException ex)
        {
            outcome = QueryOutcome<LokiLines>.Failed(ex.Reason, ex.Message);
        }
        catch (OperationCanceledException)
        {
            outcome = QueryOutcome<LokiLines>.Failed(FailureReason.Timeout, $"no answer within {Ms(_options.Timeout)}");
        }
        _lokiDown.Note(outcome.Failure);
        return outcome;
    }

    // ---- Grafana ------------------------------------------------------------------------------------------

    private (Dictionary<string, GrafanaLink>, SourceStatus) GrafanaLinksFor(EnrichmentRequest request)
    {
        if (!_grafana.Enabled) return (new Dictionary<string, GrafanaLink>(StringComparer.Ordinal), SourceStatus.Disabled);
        return (GrafanaLinks.For(request.Alerts, _grafana), new SourceStatus(SourceState.Ok));
    }

    // ---- shared -------------------------------------------------------------------------------------------

    /// <summary>
    /// The query's outcome, or a timeout when the enrichment's deadline comes first: the query goes on for
    /// whoever else waits for it, this enrichment keeps what it has. Each failure an enrichment sees is counted.
    /// </summary>
    private async Task<QueryOutcome<T>> WaitAsync<T>(Task<QueryOutcome<T>> task, Run run, string source) where T : class
    {
        QueryOutcome<T> outcome;
        try
        {
            outcome = await task.WaitAsync(run.Deadline);
        }
        catch (OperationCanceledException) when (!run.Caller.IsCancellationRequested)
        {
            outcome = QueryOutcome<T>.Failed(FailureReason.Timeout, $"no answer within {Ms(_options.Timeout)}");
        }
        if (outcome.Failure is { } failure)
        {
            EnrichmentMetrics.Failures.WithLabels(source, failure.Label()).Inc();
            if (failure != FailureReason.Timeout && Warnings(source).TryEnter(out var suppressed))
                LogSourceFailed(_logger, source, run.Request.IncidentId, failure.Label(), outcome.Error ?? "", suppressed);
        }
        return outcome;
    }

    private SourceStatus Status(int timeouts, int waited, string? error, int sent, int hits, int skipped, string source, Run run)
    {
        if (timeouts > 0)
        {
            if (Warnings(source).TryEnter(out var suppressed))
                LogSourceTimedOut(_logger, source, run.Request.IncidentId, timeouts, waited, (long)_options.Timeout.TotalMilliseconds, suppressed);
            return new SourceStatus(SourceState.Timeout, $"{timeouts} of {waited} queries had no answer within {Ms(_options.Timeout)}", sent, hits, skipped);
        }
        return error is null
            ? new SourceStatus(SourceState.Ok, null, sent, hits, skipped)
            : new SourceStatus(SourceState.Error, error, sent, hits, skipped);
    }

    private LogLimiter Warnings(string source) => source == EnrichmentMetrics.Prometheus ? _prometheusWarnings : _lokiWarnings;

    private static IEnumerable<EnrichmentAlert> FiringFirst(IReadOnlyList<EnrichmentAlert> alerts) =>
        alerts.Where(a => a.IsFiring).Concat(alerts.Where(a => !a.IsFiring));

    private static DateTimeOffset FromUnixNanos(long nanos) =>
        DateTimeOffset.UnixEpoch.AddTicks(nanos / 100);

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a <= b ? a : b;

    private static DateTimeOffset RoundUp(DateTimeOffset time, TimeSpan unit) =>
        new(((time.UtcTicks + unit.Ticks - 1) / unit.Ticks) * unit.Ticks, TimeSpan.Zero);

    private static string Ms(TimeSpan time) => $"{(long)time.TotalMilliseconds} ms";

    [LoggerMessage(EventId = 6501, Level = LogLevel.Warning, Message = "Enrichment of incident {IncidentId}: {Source} query failed ({Reason}): {Error}; the page goes out without it ({Suppressed} more of this source held back since the last one; see b25_alerting_enrichment_failures_total)")]
    private static partial void LogSourceFailed(ILogger logger, string source, string incidentId, string reason, string error, long suppressed);

    [LoggerMessage(EventId = 6502, Level = LogLevel.Warning, Message = "Enrichment of incident {IncidentId}: {Timeouts} of {Queries} {Source} queries had no answer within {TimeoutMs} ms (Enrichment:Timeout); the page goes out without them ({Suppressed} more of this source held back since the last one)")]
    private static partial void LogSourceTimedOut(ILogger logger, string source, string incidentId, int timeouts, int queries, long timeoutMs, long suppressed);

    [LoggerMessage(EventId = 6503, Level = LogLevel.Debug, Message = "Enriched incident {IncidentId} ({Alerts} alerts) in {DurationMs} ms: prometheus {Prometheus}, loki {Loki}")]
    private static partial void LogEnriched(ILogger logger, string incidentId, int alerts, double durationMs, SourceState prometheus, SourceState loki);
}
