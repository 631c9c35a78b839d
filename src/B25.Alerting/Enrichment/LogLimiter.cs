namespace B25.Alerting.Enrichment;

/// <summary>Lets one log line through per interval and counts the ones it held back.</summary>
internal sealed class LogLimiter(TimeProvider time, TimeSpan interval)
{
    private long _nextTicks = long.MinValue;
    private long _suppressed;

    /// <summary>True when a line may be written now; <paramref name="suppressed"/> is how many were held back before it.</summary>
    public bool TryEnter(out long suppressed)
    {
        var now = time.GetUtcNow().UtcTicks;
        var next = Interlocked.Read(ref _nextTicks);
        if (now >= next && Interlocked.CompareExchange(ref _nextTicks, now + interval.Ticks, next) == next)
        {
            suppressed = Interlocked.Exchange(ref _suppressed, 0);
            return true;
        }
        Interlocked.Increment(ref _suppressed);
        suppressed = 0;
        return false;
    }
}
