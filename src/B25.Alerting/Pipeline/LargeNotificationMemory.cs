using System.Runtime;

namespace B25.Alerting.Pipeline;

/// <summary>
/// Gives back the memory of a large notification once it is applied. A 20,000-alert notification (about 10 MB of JSON)
/// is held as its body, read back from the journal and bound to tens of thousands of objects, most of it on the large
/// object heap, which only a full collection frees; left to the GC, each such notification raised the process's peak
/// (248, 311, 361 MB after three of them, docs/benchmarks.md). One compacting full collection after each, at most one per
/// <see cref="MinInterval"/>, keeps the peak at what one of them costs.
/// </summary>
internal static class LargeNotificationMemory
{
    /// <summary>Bodies from this size on count as large (Webhook:MaxBodyBytes allows far more).</summary>
    public const long LargeBytes = 1 << 20;

    public static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(5);

    private static long _last = long.MinValue;

    /// <summary>Collections run so far (for tests and diagnostics).</summary>
    public static int Collections;

    public static void Applied(long bodyBytes)
    {
        if (bodyBytes < LargeBytes) return;
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _last);
        if (now - last < MinInterval.TotalMilliseconds || Interlocked.CompareExchange(ref _last, now, last) != last) return;
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        Interlocked.Increment(ref Collections);
    }
}
