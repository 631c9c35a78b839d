namespace B25.StandIns;

/// <summary>Probabilities of the faults a vendor stand-in answers with, drawn per call. All zero: a healthy vendor.</summary>
public sealed record VendorFaults
{
    public static readonly VendorFaults None = new();

    /// <summary>Keep the message, answer only after <see cref="SlowDelay"/> (longer than the client's timeout).</summary>
    public double Slow { get; init; }
    /// <summary>429 with Retry-After; the message is not kept.</summary>
    public double RateLimited { get; init; }
    /// <summary>Of the 429s, the share that carries a Retry-After header (Slack always sends one; PagerDuty may not).</summary>
    public double RetryAfterShare { get; init; } = 1;
    /// <summary>5xx; not kept.</summary>
    public double ServerError { get; init; }
    /// <summary>Connection aborted before the message is kept.</summary>
    public double ResetBefore { get; init; }
    /// <summary>Message kept, then the connection is aborted without an answer.</summary>
    public double ResetAfter { get; init; }
    public TimeSpan SlowDelay { get; init; } = TimeSpan.FromSeconds(2.5);
    /// <summary>Not a fault: every call that is not faulted is kept, then answered after a random delay up to this (within the client's timeout).</summary>
    public TimeSpan MaxLatency { get; init; }
    public int RetryAfterSeconds { get; init; } = 1;

    /// <summary>The fault one call meets, drawn by these probabilities; null: answer it as the vendor would.</summary>
    public FaultKind? Draw()
    {
        var r = Random.Shared.NextDouble();
        if ((r -= Slow) < 0) return FaultKind.Slow;
        if ((r -= RateLimited) < 0) return FaultKind.RateLimited;
        if ((r -= ServerError) < 0) return FaultKind.ServerError;
        if ((r -= ResetBefore) < 0) return FaultKind.ResetBefore;
        if ((r -= ResetAfter) < 0) return FaultKind.ResetAfter;
        return null;
    }

    /// <summary>How a fault is named in the counts the fault suite reports.</summary>
    public static string Name(FaultKind kind) => kind switch
    {
        FaultKind.Slow => "slow",
        FaultKind.RateLimited => "429",
        FaultKind.ServerError => "5xx",
        FaultKind.ResetBefore => "reset before keeping",
        FaultKind.ResetAfter => "reset after keeping",
        _ => kind.ToString(),
    };
}

public enum FaultKind { Slow, RateLimited, ServerError, ResetBefore, ResetAfter }

/// <summary>
/// Instants (seconds on the suite's clock) of calls and Retry-After promises for one target (a Slack channel, a PagerDuty
/// routing key). A Retry-After binds the calls the client sends after it read the 429: a call that arrives after the 429
/// was answered and before the Retry-After (counted from the 429 call's arrival, 100 ms of slack) has passed is a
/// violation. Calls that arrived before the 429 was answered were already on their way: not violations, but counted.
/// A 429 answered to a client that had already hung up (its timeout passed while the stand-in was slow to answer, as on
/// an overloaded machine) was never read: it sets no Retry-After here.
/// </summary>
public sealed class CallLog
{
    private readonly List<double> _calls = [];
    private double _notBefore = double.MinValue;
    private double _answeredAt = double.MaxValue;
    private int _retryAfter;
    private string? _limited;
    private int _violations;
    private int _inFlight;
    private int _maxInFlight;

    /// <summary>A few Retry-After violations described, for the progress lines.</summary>
    public List<string> Examples { get; } = [];

    /// <summary>Records a call arriving now; <see cref="Completed"/> when it has been answered.</summary>
    /// <param name="now">When it arrived.</param>
    /// <param name="caller">Who made it (a replica's name), when the stand-in can tell, for the examples.</param>
    public void Arrived(double now, string? caller = null)
    {
        lock (_calls)
        {
            _calls.Add(now);
            _maxInFlight = Math.Max(_maxInFlight, ++_inFlight);
            if (now > _answeredAt && now < _notBefore - 0.1)
            {
                _violations++;
                if (Examples.Count < 5)
                    Examples.Add($"call {now - _answeredAt:0.000} s after a 429 was answered, {_notBefore - now:0.000} s before its Retry-After ended" +
                                 $" ({_inFlight - 1} other call(s) in flight)" +
                                 (caller is null && _limited is null ? "" : $"; this call by {caller ?? "?"}, the 429 (Retry-After: {_retryAfter}) to {_limited ?? "?"}") +
                                 $"; at {now:0.000} s on the suite's clock");
            }
        }
    }

    /// <summary>The call has been answered (or aborted).</summary>
    public void Completed()
    {
        lock (_calls) _inFlight--;
    }

    /// <summary>A 429 to a call that arrived at <paramref name="arrivedAt"/> was answered at <paramref name="answeredAt"/>.</summary>
    public void RetryAfterGiven(double arrivedAt, double answeredAt, int seconds, string? caller = null)
    {
        lock (_calls)
        {
            if (arrivedAt + seconds > _notBefore)
            {
                _notBefore = arrivedAt + seconds;
                _answeredAt = answeredAt;
                _retryAfter = seconds;
                _limited = caller;
            }
        }
    }

    public int Violations { get { lock (_calls) return _violations; } }
    public int Count { get { lock (_calls) return _calls.Count; } }
    /// <summary>Most calls in flight at once on this target.</summary>
    public int MaxInFlight { get { lock (_calls) return _maxInFlight; } }

    /// <summary>Most calls in any window of one second.</summary>
    public int MaxPerSecond()
    {
        double[] calls;
        lock (_calls) calls = [.. _calls];
        Array.Sort(calls);
        int best = 0, start = 0;
        for (var i = 0; i < calls.Length; i++)
        {
            while (calls[i] - calls[start] >= 1.0) start++;
            best = Math.Max(best, i - start + 1);
        }
        return best;
    }
}

/// <summary>Counts of injected faults by kind, shared by every injector of a scenario.</summary>
public sealed class FaultCounter
{
    private readonly Dictionary<string, int> _counts = [];

    public void Add(string kind, int n = 1)
    {
        lock (_counts) _counts[kind] = _counts.GetValueOrDefault(kind) + n;
    }

    public Dictionary<string, int> Snapshot() { lock (_counts) return new(_counts); }
    public int Total { get { lock (_counts) return _counts.Values.Sum(); } }
}
