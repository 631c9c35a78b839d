using System.Collections.Concurrent;

namespace B25.Alerting.Enrichment;

/// <summary>The outcome of one query: a value, or why there is none. Only values are cached.</summary>
internal sealed record QueryOutcome<T>(T? Value, FailureReason? Failure = null, string? Error = null) where T : class
{
    public bool Ok => Value is not null;

    public static QueryOutcome<T> Failed(FailureReason failure, string error) => new(null, failure, error);
}

/// <summary>
/// Answers of one source, shared for a short while: a query in flight is joined rather than sent again, and an
/// answer is reused for <c>Enrichment:CacheFor</c> after it arrived (by the incident's next revision and by the
/// other incidents of a storm). Failures are dropped as soon as they are known, so the next enrichment tries again.
/// A query runs on its own deadline, not its first caller's: a caller that stops waiting does not cancel it for
/// the others, and a late answer still serves the next caller.
/// </summary>
internal sealed class QueryCache<T>(TimeProvider time, TimeSpan cacheFor) where T : class
{
    // Expired answers are swept when the cache grows past this many keys (a storm of distinct expressions).
    private const int SweepAbove = 512;

    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    public int Count => _entries.Count;

    /// <summary>
    /// The answer (or the query in flight) for the key, or null when there is none, it expired, or it was asked
    /// before <paramref name="askedSince"/>: an answer older than the alert it is for cannot show what fired it.
    /// </summary>
    public Task<QueryOutcome<T>>? TryGet(string key, DateTimeOffset? askedSince = null)
    {
        if (!_entries.TryGetValue(key, out var entry)) return null;
        if (askedSince is { } since && entry.AskedAt < since) return null;
        if (!entry.IsExpired(time.GetUtcNow())) return entry.Task;
        _entries.TryRemove(new KeyValuePair<string, Entry>(key, entry));
        return null;
    }

    /// <summary>The cached answer or query in flight for the key (see <see cref="TryGet"/>); else starts <paramref name="fetch"/> (Started true).</summary>
    public (Task<QueryOutcome<T>> Outcome, bool Started) GetOrStart(string key, Func<Task<QueryOutcome<T>>> fetch, DateTimeOffset? askedSince = null)
    {
        while (true)
        {
            if (TryGet(key, askedSince) is { } cached) return (cached, false);
            var entry = new Entry(fetch, time.GetUtcNow());
            if (_entries.TryGetValue(key, out var older))
            {
                // Too old for this alert: a fresh query takes its place.
                if (!_entries.TryUpdate(key, entry, older)) continue;
                return Started(key, entry);
            }
            if (!_entries.TryAdd(key, entry)) continue; // another caller started it meanwhile: join theirs
            return Started(key, entry);
        }
    }

    private (Task<QueryOutcome<T>> Outcome, bool Started) Started(string key, Entry entry)
    {
        var task = entry.Task;
        _ = task.ContinueWith(t =>
        {
            if (t.IsCompletedSuccessfully && t.Result.Ok && cacheFor > TimeSpan.Zero) entry.ExpiresAt = time.GetUtcNow() + cacheFor;
            else _entries.TryRemove(new KeyValuePair<string, Entry>(key, entry));
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        if (_entries.Count > SweepAbove) Sweep();
        return (task, true);
    }

    private void Sweep()
    {
        var now = time.GetUtcNow();
        foreach (var (key, entry) in _entries)
            if (entry.IsExpired(now)) _entries.TryRemove(new KeyValuePair<string, Entry>(key, entry));
    }

    private sealed class Entry(Func<Task<QueryOutcome<T>>> fetch, DateTimeOffset askedAt)
    {
        /// <summary>When the query was asked: the end of its window.</summary>
        public DateTimeOffset AskedAt { get; } = askedAt;

        private readonly Lazy<Task<QueryOutcome<T>>> _task = new(fetch, LazyThreadSafetyMode.ExecutionAndPublication);

        public Task<QueryOutcome<T>> Task => _task.Value;

        /// <summary>Set when a value arrived; null while in flight.</summary>
        public DateTimeOffset? ExpiresAt { get; set; }

        public bool IsExpired(DateTimeOffset now) => ExpiresAt is { } expires && now >= expires;
    }
}
