namespace B25.Alerting.Enrichment;

/// <summary>
/// Remembers, for one source, that it refused or did not answer a moment ago, so the next incidents of a storm
/// go out at once instead of each waiting on it until <c>Enrichment:Timeout</c>. Failures are not cached per
/// query (<see cref="QueryCache{T}"/>): without this mark every new question would wait on a source that is down.
/// </summary>
internal sealed class SourceDownMark(string source, TimeProvider time)
{
    /// <summary>How long a source is left alone after it refused or did not answer.</summary>
    public static readonly TimeSpan DownFor = TimeSpan.FromSeconds(5);

    private long _downUntilTicks;

    /// <summary>A failed outcome to answer with instead of asking, or null when the source may be asked.</summary>
    public QueryOutcome<T>? Refusal<T>() where T : class
    {
        var until = new DateTimeOffset(Interlocked.Read(ref _downUntilTicks), TimeSpan.Zero);
        return time.GetUtcNow() < until
            ? QueryOutcome<T>.Failed(FailureReason.Unreachable, $"{source} was unreachable moments ago; not asked again before {until.UtcDateTime:HH:mm:ss} UTC")
            : null;
    }

    /// <summary>Marks the source down when <paramref name="failure"/> says it is unreachable or silent.</summary>
    public void Note(FailureReason? failure)
    {
        if (failure is not (FailureReason.Unreachable or FailureReason.Timeout)) return;
        // Only a failure asked for fresh marks it: an answer from the mark itself does not extend it.
        var now = time.GetUtcNow().UtcTicks;
        var current = Interlocked.Read(ref _downUntilTicks);
        if (current < now) Interlocked.CompareExchange(ref _downUntilTicks, now + DownFor.Ticks, current);
    }
}
