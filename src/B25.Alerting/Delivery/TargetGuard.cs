using System.Collections.Concurrent;
using Polly;
using Polly.CircuitBreaker;

namespace B25.Alerting.Delivery;

/// <summary>How a channel guards each of its targets.</summary>
/// <param name="Burst">Calls a quiet target may make at once.</param>
/// <param name="Replenish">Time to earn one more call (the sustained budget).</param>
/// <param name="QuickRetries">Retries in place for a blip; longer outages wait in the outbox.</param>
/// <param name="RetryDelay">Base delay of the quick retries (jittered) when the target named no Retry-After.</param>
/// <param name="Backoff">Constant or exponential quick retries.</param>
/// <param name="BreakerMinimumThroughput">Calls in the sampling window before the breaker may open.</param>
/// <param name="BreakerSampling">The breaker's sampling window (it opens at half failing).</param>
/// <param name="BreakDuration">How long an open breaker keeps calls off the target.</param>
internal sealed record TargetGuardSettings(
    int Burst,
    TimeSpan Replenish,
    int QuickRetries,
    TimeSpan RetryDelay,
    DelayBackoffType Backoff,
    int BreakerMinimumThroughput,
    TimeSpan BreakerSampling,
    TimeSpan BreakDuration);

/// <summary>
/// Per-target send budget, short retries in place and a circuit breaker, shared by the HTTP channels.
/// The result type carries the channel's own retry classification: the guard only asks whether a result
/// is transient and how long it asks to wait.
/// </summary>
/// <remarks>
/// Every HTTP attempt, retries included, spends a token of the target's budget: a vendor counts calls, not
/// deliveries. A Retry-After is a promise to the vendor and holds for every caller of the target, so it is
/// kept per target as a "not before" instant; neither jitter nor a shorter circuit break may cut it.
/// The retries are a plain loop rather than Polly's retry strategy, which cannot wait for a Retry-After
/// exactly (it jitters) nor spend a token per attempt; Polly still provides the breaker.
/// </remarks>
internal sealed class TargetGuard<TResult>(
    TargetGuardSettings settings,
    Func<TResult, bool> isTransient,
    Func<TResult, TimeSpan?> retryAfter,
    TimeProvider time,
    StringComparer? targetComparer = null)
{
    /// <summary>A Retry-After longer than this is not waited for in place: the outbox waits instead.</summary>
    private static readonly TimeSpan MaxInPlaceWait = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, TargetState> _targets = new(targetComparer ?? StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Target, string Error), bool> _reported = new();

    /// <summary>
    /// One call under the target's budget, Retry-After, retries and breaker; <paramref name="whenOpen"/> answers at once,
    /// with the time left, while the breaker is open or the target asked for a wait longer than the guard waits in place.
    /// </summary>
    public async Task<TResult> ExecuteAsync(string target, Func<CancellationToken, Task<TResult>> call, Func<TimeSpan, TResult> whenOpen,
        CancellationToken cancellationToken)
    {
        var state = State(target);
        for (var attempt = 0; ; attempt++)
        {
            if (await ClearToCallAsync(state, cancellationToken) is { } blocked)
                return whenOpen(blocked);

            TResult result;
            try
            {
                result = await state.Breaker.ExecuteAsync(async ct => await call(ct), cancellationToken);
            }
            catch (BrokenCircuitException ex)
            {
                // Another caller's probe is in flight or the breaker just opened.
                var now = time.GetUtcNow();
                return whenOpen(Longest(ex.RetryAfter ?? settings.BreakDuration, state.BreakLeft(now), state.RetryAfterLeft(now)));
            }
            catch (Exception ex) when (ex is HttpRequestException or TimeoutException && attempt < settings.QuickRetries)
            {
                await Task.Delay(Backoff(attempt), time, cancellationToken);
                continue;
            }

            var wait = retryAfter(result) is { } asked && asked > TimeSpan.Zero ? asked : (TimeSpan?)null;
            if (wait is { } w)
                state.NotBefore(time.GetUtcNow() + w);

            if (!isTransient(result) || attempt >= settings.QuickRetries || wait > MaxInPlaceWait)
                return result;
            // With a Retry-After the next round waits for exactly that (the "not before" just set).
            if (wait is null)
                await Task.Delay(Backoff(attempt), time, cancellationToken);
        }
    }

    /// <summary>True the first time a target fails for good with this error: log it once, count it always.</summary>
    public bool FirstReport(string target, string error) => _reported.TryAdd((target, error), true);

    /// <summary>
    /// Waits until the target may be called and a token is spent; or returns how long the caller must wait
    /// elsewhere (open breaker, long Retry-After).
    /// </summary>
    private async Task<TimeSpan?> ClearToCallAsync(TargetState state, CancellationToken cancellationToken)
    {
        while (true)
        {
            var now = time.GetUtcNow();
            var breakLeft = state.BreakLeft(now);
            var retryAfterLeft = state.RetryAfterLeft(now);
            if (breakLeft > TimeSpan.Zero)
                return Longest(breakLeft, retryAfterLeft);
            if (retryAfterLeft > MaxInPlaceWait)
                return retryAfterLeft;
            if (retryAfterLeft > TimeSpan.Zero)
            {
                await Task.Delay(retryAfterLeft, time, cancellationToken);
                continue;
            }

            var tokenWait = state.Budget.Take(now);
            if (tokenWait > TimeSpan.Zero)
                await Task.Delay(tokenWait, time, cancellationToken);
            // Queued for the token while another caller was told to wait: the token is forfeited (the budget
            // errs on the slow side) and the wait starts over.
            if (state.RetryAfterLeft(time.GetUtcNow()) <= TimeSpan.Zero)
                return null;
        }
    }

    private TimeSpan Backoff(int attempt)
    {
        var delay = settings.Backoff switch
        {
            DelayBackoffType.Exponential => settings.RetryDelay * Math.Pow(2, attempt),
            DelayBackoffType.Linear => settings.RetryDelay * (attempt + 1),
            _ => settings.RetryDelay,
        };
        // +-25 %: callers that failed together do not retry together.
        return delay * (0.75 + Random.Shared.NextDouble() / 2);
    }

    private static TimeSpan Longest(params ReadOnlySpan<TimeSpan> waits)
    {
        var longest = TimeSpan.Zero;
        foreach (var wait in waits)
            if (wait > longest) longest = wait;
        return longest;
    }

    private TargetState State(string target) => _targets.GetOrAdd(target, _ => new TargetState(settings, isTransient, time));

    private sealed class TargetState
    {
        private readonly Lock _lock = new();
        private DateTimeOffset _notBefore = DateTimeOffset.MinValue;
        private DateTimeOffset _openUntil = DateTimeOffset.MinValue;

        public TargetState(TargetGuardSettings settings, Func<TResult, bool> isTransient, TimeProvider time)
        {
            Budget = new SendBudget(settings.Burst, settings.Replenish);
            Breaker = new ResiliencePipelineBuilder<TResult> { TimeProvider = time }
                .AddCircuitBreaker(new CircuitBreakerStrategyOptions<TResult>
                {
                    ShouldHandle = args => ValueTask.FromResult(
                        args.Outcome.Exception is HttpRequestException or TimeoutException
                        || (args.Outcome.Exception is null && isTransient(args.Outcome.Result!))),
                    FailureRatio = 0.5,
                    MinimumThroughput = settings.BreakerMinimumThroughput,
                    SamplingDuration = settings.BreakerSampling,
                    BreakDuration = settings.BreakDuration,
                    OnOpened = args =>
                    {
                        lock (_lock) _openUntil = time.GetUtcNow() + args.BreakDuration;
                        return default;
                    },
                    OnHalfOpened = _ =>
                    {
                        lock (_lock) _openUntil = DateTimeOffset.MinValue;
                        return default;
                    },
                })
                .Build();
        }

        public SendBudget Budget { get; }

        public ResiliencePipeline<TResult> Breaker { get; }

        /// <summary>Moves the "not before" instant later, never earlier: the longest promise made to the target holds.</summary>
        public void NotBefore(DateTimeOffset instant)
        {
            lock (_lock)
                if (instant > _notBefore) _notBefore = instant;
        }

        public TimeSpan RetryAfterLeft(DateTimeOffset now)
        {
            lock (_lock) return _notBefore - now;
        }

        public TimeSpan BreakLeft(DateTimeOffset now)
        {
            lock (_lock) return _openUntil - now;
        }
    }

    /// <summary>
    /// A token bucket on the guard's clock (System.Threading.RateLimiting refills on a real timer, which a
    /// FakeTimeProvider cannot drive). Tokens may go into debt: each taker reserves the next token and
    /// waits until it is earned, so waiters are served in order.
    /// </summary>
    private sealed class SendBudget(int burst, TimeSpan replenish)
    {
        private readonly Lock _lock = new();
        private double _tokens = burst;
        private DateTimeOffset? _refilled;

        /// <summary>Takes a token; returns how long to wait before it may be used.</summary>
        public TimeSpan Take(DateTimeOffset now)
        {
            lock (_lock)
            {
                if (_refilled is not { } last)
                    _refilled = now;
                else if (now > last)
                {
                    _tokens = Math.Min(burst, _tokens + (now - last) / replenish);
                    _refilled = now;
                }
                _tokens -= 1;
                return _tokens >= 0 ? TimeSpan.Zero : replenish * -_tokens;
            }
        }
    }
}
