using System.Collections.Concurrent;
using System.Threading.RateLimiting;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace B25.Alerting.Delivery;

/// <summary>How a channel guards each of its targets.</summary>
/// <param name="Burst">Calls a quiet target may make at once.</param>
/// <param name="Replenish">Time to earn one more call (the sustained budget).</param>
/// <param name="QuickRetries">Retries in place for a blip; longer outages wait in the outbox.</param>
/// <param name="RetryDelay">Base delay of the quick retries (jittered).</param>
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
/// Per-target send budget (token bucket) and resilience (short jittered retries honouring Retry-After,
/// circuit breaker), shared by the HTTP channels. The result type carries the channel's own retry
/// classification: the guard only asks whether a result is transient and how long it asks to wait.
/// </summary>
internal sealed class TargetGuard<TResult>(
    TargetGuardSettings settings,
    Func<TResult, bool> isTransient,
    Func<TResult, TimeSpan?> retryAfter,
    TimeProvider time,
    StringComparer? targetComparer = null)
{
    /// <summary>A Retry-After longer than this is not waited for in place: the outbox waits instead.</summary>
    private static readonly TimeSpan MaxInPlaceWait = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, TokenBucketRateLimiter> _limiters = new(targetComparer ?? StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ResiliencePipeline<TResult>> _pipelines = new(targetComparer ?? StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Target, string Error), bool> _reported = new();

    /// <summary>One call under the target's budget, retries and breaker; <paramref name="whenOpen"/> answers while the breaker is open.</summary>
    public async Task<TResult> ExecuteAsync(string target, Func<CancellationToken, Task<TResult>> call, Func<TimeSpan, TResult> whenOpen,
        CancellationToken cancellationToken)
    {
        using var lease = await Limiter(target).AcquireAsync(1, cancellationToken);
        try
        {
            return await Pipeline(target).ExecuteAsync(async ct => await call(ct), cancellationToken);
        }
        catch (BrokenCircuitException ex)
        {
            return whenOpen(ex.RetryAfter ?? settings.BreakDuration);
        }
    }

    /// <summary>True the first time a target fails for good with this error: log it once, count it always.</summary>
    public bool FirstReport(string target, string error) => _reported.TryAdd((target, error), true);

    private TokenBucketRateLimiter Limiter(string target) => _limiters.GetOrAdd(target, _ => new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
    {
        TokenLimit = settings.Burst,
        TokensPerPeriod = 1,
        ReplenishmentPeriod = settings.Replenish,
        QueueLimit = int.MaxValue,
        QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        AutoReplenishment = true,
    }));

    private ResiliencePipeline<TResult> Pipeline(string target) => _pipelines.GetOrAdd(target, _ =>
    {
        bool Transient(Outcome<TResult> outcome) =>
            outcome.Exception is HttpRequestException or TimeoutException || (outcome.Result is { } r && isTransient(r));

        return new ResiliencePipelineBuilder<TResult> { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions<TResult>
            {
                ShouldHandle = args => ValueTask.FromResult(Transient(args.Outcome)
                    && (args.Outcome.Result is not { } r || (retryAfter(r) ?? TimeSpan.Zero) <= MaxInPlaceWait)),
                MaxRetryAttempts = settings.QuickRetries,
                BackoffType = settings.Backoff,
                UseJitter = true,
                Delay = settings.RetryDelay,
                DelayGenerator = args => ValueTask.FromResult(
                    args.Outcome.Result is { } r && retryAfter(r) is { } wait && wait > TimeSpan.Zero ? wait : (TimeSpan?)null),
            })
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions<TResult>
            {
                ShouldHandle = args => ValueTask.FromResult(Transient(args.Outcome)),
                FailureRatio = 0.5,
                MinimumThroughput = settings.BreakerMinimumThroughput,
                SamplingDuration = settings.BreakerSampling,
                BreakDuration = settings.BreakDuration,
            })
            .Build();
    });
}
