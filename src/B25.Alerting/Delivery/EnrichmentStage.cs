using System.Collections.Concurrent;
using B25.Alerting.Enrichment;
using B25.Alerting.Enrichment.Grafana;
using B25.Alerting.Enrichment.Logs;
using B25.Alerting.Enrichment.PromQl;
using B25.Alerting.Storage;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Delivery;

/// <summary>
/// The enrichment stage between the state machine and the channels: the context of an incident revision
/// (PromQL values, logs, dashboard links) is found once, stored with the revision, and every channel,
/// retry and edit renders from the stored result. The first delivery of a revision waits for it at most
/// <c>Enrichment:Timeout</c>; past that, or with a source down, the page goes out with what was found.
/// </summary>
internal sealed partial class EnrichmentStage
{
    private readonly IIncidentEnricher _enricher;
    private readonly IEnrichmentStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger<EnrichmentStage> _logger;
    private readonly bool _enabled;
    private readonly ConcurrentDictionary<(string Incident, long Revision), Lazy<Task<IncidentEnrichment?>>> _running = new();

    public EnrichmentStage(IIncidentEnricher enricher, IEnrichmentStore store, IOptions<PrometheusOptions> prometheus, IOptions<LokiOptions> loki,
        IOptions<GrafanaOptions> grafana, TimeProvider time, ILogger<EnrichmentStage> logger)
    {
        _enricher = enricher;
        _store = store;
        _time = time;
        _logger = logger;
        _enabled = prometheus.Value.Enabled || loki.Value.Enabled || grafana.Value.Enabled;
    }

    /// <summary>False when no source is configured: nothing is queried nor stored.</summary>
    public bool Enabled => _enabled;

    /// <summary>The incident with the enrichment of its revision (found now, or stored before); unchanged when there is none.</summary>
    public async Task<IncidentView> EnrichAsync(IncidentView incident, CancellationToken cancellationToken)
    {
        if (!_enabled) return incident;
        var key = (incident.Id, incident.Revision);
        // Targets of one incident are delivered side by side: the first one queries, the others wait for it.
        var lazy = _running.GetOrAdd(key, k => new Lazy<Task<IncidentEnrichment?>>(() => FindOrRunAsync(incident, cancellationToken)));
        try
        {
            return await lazy.Value.WaitAsync(cancellationToken) is { } enrichment ? incident with { Enrichment = enrichment } : incident;
        }
        catch
        {
            // Not kept for the next delivery: it tries again.
            if (lazy.Value.IsCompleted) Forget(key, lazy);
            throw;
        }
    }

    private void Forget((string, long) key, Lazy<Task<IncidentEnrichment?>> lazy) =>
        _running.TryRemove(new KeyValuePair<(string, long), Lazy<Task<IncidentEnrichment?>>>(key, lazy));

    /// <summary>The stored enrichment of the incident's latest enriched revision (charts), or null.</summary>
    public async Task<IncidentEnrichment?> LatestAsync(string incidentId, CancellationToken cancellationToken) =>
        await _store.LatestAsync(incidentId, cancellationToken) is { } stored ? Read(stored.Body) : null;

    private async Task<IncidentEnrichment?> FindOrRunAsync(IncidentView incident, CancellationToken cancellationToken)
    {
        var key = (incident.Id, incident.Revision);
        var stored = await _store.FindAsync(incident.Id, incident.Revision, cancellationToken);
        if (stored is not null)
        {
            _ = Task.Run(() => ForgetLater(key));
            return Read(stored);
        }

        IncidentEnrichment found;
        try
        {
            found = await _enricher.EnrichAsync(EnrichmentRequest.From(incident), cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A bug in a source must not hold a page: it goes out with links only.
            LogEnrichFailed(ex, incident.Id, incident.Revision);
            _ = Task.Run(() => ForgetLater(key));
            return null;
        }
        // Stored off the page's path: this process's other targets take it from memory until it is stored, retries
        // and edits (and other replicas) from the store. Should another replica store the revision first, its copy is kept.
        _ = Task.Run(() => SaveAsync(key, found, cancellationToken));
        return found;
    }

    private async Task SaveAsync((string Incident, long Revision) key, IncidentEnrichment found, CancellationToken cancellationToken)
    {
        try
        {
            await _store.SaveAsync(key.Incident, key.Revision, EnrichmentJson.Serialize(found), _time.GetUtcNow().ToUnixTimeMilliseconds(),
                cancellationToken);
        }
        catch (Exception ex)
        {
            // Not stored: the next delivery of this revision finds it missing and queries again. Nothing is lost.
            LogSaveFailed(ex, key.Incident, key.Revision);
        }
        finally
        {
            await ForgetLater(key);
        }
    }

    /// <summary>Drops the in-memory result a moment after it was settled, when the deliveries side by side have it.</summary>
    private async Task ForgetLater((string, long) key)
    {
        await Task.Delay(TimeSpan.FromSeconds(5), _time);
        if (_running.TryGetValue(key, out var lazy)) Forget(key, lazy);
    }

    private IncidentEnrichment? Read(string json)
    {
        try
        {
            return EnrichmentJson.Deserialize(json);
        }
        catch (System.Text.Json.JsonException ex)
        {
            LogUnreadable(ex);
            return null;
        }
    }

    [LoggerMessage(EventId = 1401, Level = LogLevel.Error, Message = "Enrichment of incident {IncidentId} revision {Revision} failed; it is delivered without context")]
    private partial void LogEnrichFailed(Exception ex, string incidentId, long revision);

    [LoggerMessage(EventId = 1403, Level = LogLevel.Warning, Message = "Enrichment of incident {IncidentId} revision {Revision} could not be stored; a later delivery of it queries again")]
    private partial void LogSaveFailed(Exception ex, string incidentId, long revision);

    [LoggerMessage(EventId = 1402, Level = LogLevel.Warning, Message = "A stored enrichment could not be read; the incident is delivered without context")]
    private partial void LogUnreadable(Exception ex);
}
