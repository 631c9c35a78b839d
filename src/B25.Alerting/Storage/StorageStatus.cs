namespace B25.Alerting.Storage;

/// <summary>
/// What the service last learned about writing to storage, from the places that write: a delivery
/// whose result could not be recorded, the journal, the readiness probe. Readiness reports it, so a
/// full or read-only disk shows even while reads still work.
/// </summary>
internal sealed class StorageStatus(IStorageProvider storage, TimeProvider time)
{
    private readonly object _gate = new();
    private string? _fault;
    private DateTimeOffset? _since;

    /// <summary>The current write fault ("where: what"), or null when the last write succeeded.</summary>
    public string? Fault
    {
        get { lock (_gate) return _fault is null ? null : $"{_fault} (since {_since:O})"; }
    }

    public void ReportFailure(string where, Exception exception)
    {
        storage.OnWriteFault(exception);
        lock (_gate)
        {
            _since ??= time.GetUtcNow();
            _fault = $"{where}: {exception.GetType().Name}: {exception.Message}";
        }
        if (Observability.MetricsScope.Counts) Observability.AlertingMetrics.StorageWriteFault.Set(1);
    }

    public void ReportSuccess()
    {
        lock (_gate)
        {
            _fault = null;
            _since = null;
        }
        if (Observability.MetricsScope.Counts) Observability.AlertingMetrics.StorageWriteFault.Set(0);
    }
}
