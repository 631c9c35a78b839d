using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace B25.Alerting.Storage;

/// <summary>
/// Readiness by a real write: a full or read-only disk still answers reads, so a SELECT says nothing
/// about whether a notification can be journaled. The probe writes one row in a write transaction,
/// committed as the journal commits (synchronous=FULL, so a failing fsync shows too). A probe that
/// succeeds means storage works again, whatever a writer reported before; one that fails is reported
/// to <see cref="StorageStatus"/> like any other write fault.
/// </summary>
internal sealed class StorageHealthCheck(IJournalStore journal, IStorageProvider storage, StorageStatus status, TimeProvider time) : IHealthCheck
{
    /// <summary>How long a check waits for the probe: a busy writer holding the write turn is not a fault.</summary>
    internal static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    /// <summary>A probe still unfinished after this long is a fault: SQLite gives up on a lock after 30 s.</summary>
    internal static readonly TimeSpan Stuck = TimeSpan.FromSeconds(45);

    private readonly object _gate = new();
    private Task<Exception?>? _probe;
    private long _probeStarted;

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        Task<Exception?> probe;
        long started;
        lock (_gate)
        {
            // One probe at a time: checks that come while one is running (it waits for a busy writer)
            // wait for it rather than queue more writes behind that writer.
            if (_probe is null || _probe.IsCompleted)
            {
                _probeStarted = time.GetTimestamp();
                _probe = Task.Run(ProbeAsync, CancellationToken.None);
            }
            probe = _probe;
            started = _probeStarted;
        }

        Exception? failure;
        try
        {
            failure = await probe.WaitAsync(Timeout, time, cancellationToken);
        }
        catch (TimeoutException)
        {
            var waited = time.GetElapsedTime(started);
            if (waited >= Stuck)
                return HealthCheckResult.Unhealthy($"storage write probe unfinished after {waited.TotalSeconds:F0} s");
            // Nothing new learned: a fault another writer reported stands, otherwise storage is just busy.
            return status.Fault is { } fault
                ? HealthCheckResult.Unhealthy($"storage cannot be written: {fault}")
                : HealthCheckResult.Degraded($"storage write probe waiting for a busy writer ({waited.TotalSeconds:F1} s)");
        }

        return failure switch
        {
            null => HealthCheckResult.Healthy("storage write probe succeeded"),
            _ when storage.IsBusy(failure) => HealthCheckResult.Degraded("storage write probe found the database locked by another connection", failure),
            _ => HealthCheckResult.Unhealthy($"storage cannot be written: {status.Fault ?? failure.Message}", failure),
        };
    }

    private async Task<Exception?> ProbeAsync()
    {
        try
        {
            await journal.ProbeWriteAsync(time.GetUtcNow().ToUnixTimeMilliseconds(), CancellationToken.None);
            status.ReportSuccess();
            return null;
        }
        catch (Exception ex) when (storage.IsBusy(ex))
        {
            // Another connection holds the write lock past the wait. Busy is not broken; the journal
            // reports it if it cannot write either.
            return ex;
        }
        catch (Exception ex)
        {
            status.ReportFailure("readiness probe", ex);
            return ex;
        }
    }
}
