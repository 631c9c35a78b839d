using System.Collections.Concurrent;
using B25.Alerting.Delivery;
using Microsoft.Extensions.Time.Testing;
using Polly;

namespace B25.Alerting.Tests.Delivery;

/// <summary>
/// The guard in front of each target, on a FakeTimeProvider: every assertion is on the (fake) instants at which
/// the target was called, so a guard that calls too early or too often fails.
/// </summary>
public sealed class TargetGuardTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(100);

    private readonly FakeTimeProvider _time = new(T0);
    private readonly ConcurrentQueue<DateTimeOffset> _calls = new();

    private IReadOnlyList<DateTimeOffset> Calls => _calls.ToArray();

    private static TargetGuardSettings Settings(int burst = 3, int quickRetries = 2, int breakerMinimumThroughput = 100,
        DelayBackoffType backoff = DelayBackoffType.Exponential, TimeSpan? retryDelay = null) =>
        new(burst, TimeSpan.FromSeconds(1), quickRetries, retryDelay ?? TimeSpan.FromMilliseconds(250), backoff,
            breakerMinimumThroughput, BreakerSampling: TimeSpan.FromSeconds(30), BreakDuration: TimeSpan.FromSeconds(15));

    private TargetGuard<Answer> Guard(TargetGuardSettings settings) =>
        new(settings, a => a.Kind == AnswerKind.Transient, a => a.RetryAfter, _time);

    private static Answer WhenOpen(TimeSpan wait) => new(AnswerKind.Open, wait);

    /// <summary>A target that records when it was called and answers with the next of <paramref name="answers"/> (the last repeats).</summary>
    private Func<CancellationToken, Task<Answer>> Target(params Answer[] answers)
    {
        var next = -1;
        return _ =>
        {
            _calls.Enqueue(_time.GetUtcNow());
            return Task.FromResult(answers[Math.Min(Interlocked.Increment(ref next), answers.Length - 1)]);
        };
    }

    /// <summary>Lets fake time pass in small steps until the call completes (real time only to let continuations run).</summary>
    private async Task<T> Drive<T>(Task<T> task)
    {
        var limit = _time.GetUtcNow() + TimeSpan.FromMinutes(10);
        await Task.Delay(1);
        while (!task.IsCompleted && _time.GetUtcNow() < limit)
        {
            _time.Advance(Step);
            await Task.Delay(1);
        }
        Assert.True(task.IsCompleted, "the guarded call did not complete within 10 minutes of fake time");
        return await task;
    }

    private void Pass(TimeSpan span) => _time.Advance(span);

    [Fact]
    public async Task A_retry_after_of_60_s_is_honoured_by_every_caller()
    {
        var guard = Guard(Settings());
        var target = Target(new Answer(AnswerKind.Transient, TimeSpan.FromSeconds(60)), new Answer(AnswerKind.Ok));

        var first = await Drive(guard.ExecuteAsync("C1", target, WhenOpen, CancellationToken.None));
        Assert.Equal(AnswerKind.Transient, first.Kind);
        Assert.Single(Calls);

        // Another caller at once, and half-way: told how long is left, the target is not called.
        var second = await guard.ExecuteAsync("C1", target, WhenOpen, CancellationToken.None);
        Assert.Equal(AnswerKind.Open, second.Kind);
        Assert.InRange(second.RetryAfter!.Value, TimeSpan.FromSeconds(59), TimeSpan.FromSeconds(60));
        Pass(TimeSpan.FromSeconds(30));
        var third = await guard.ExecuteAsync("C1", target, WhenOpen, CancellationToken.None);
        Assert.Equal(AnswerKind.Open, third.Kind);
        Assert.InRange(third.RetryAfter!.Value, TimeSpan.FromSeconds(29), TimeSpan.FromSeconds(30));
        Assert.Single(Calls);

        // Close to the end the caller waits in place, and calls no earlier than 60 s after the answer.
        Pass(TimeSpan.FromSeconds(27));
        var fourth = await Drive(guard.ExecuteAsync("C1", target, WhenOpen, CancellationToken.None));
        Assert.Equal(AnswerKind.Ok, fourth.Kind);
        Assert.Equal(2, Calls.Count);
        Assert.True(Calls[1] - Calls[0] >= TimeSpan.FromSeconds(60), $"called again after {Calls[1] - Calls[0]}");
    }

    [Fact]
    public async Task A_short_retry_after_is_waited_exactly_in_place_not_shortened_by_jitter()
    {
        var guard = Guard(Settings(quickRetries: 2));
        var target = Target(new Answer(AnswerKind.Transient, TimeSpan.FromSeconds(4)), new Answer(AnswerKind.Transient, TimeSpan.FromSeconds(3)),
            new Answer(AnswerKind.Ok));

        var answer = await Drive(guard.ExecuteAsync("C1", target, WhenOpen, CancellationToken.None));

        Assert.Equal(AnswerKind.Ok, answer.Kind);
        Assert.Equal(3, Calls.Count);
        // Never shorter than asked. Fake time moves in steps while the retry's continuation waits for a thread: on a busy
        // machine it can land a few steps late (2 steps failed a CI run), so the upper bound allows 5.
        Assert.InRange(Calls[1] - Calls[0], TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(4) + 5 * Step);
        Assert.InRange(Calls[2] - Calls[1], TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(3) + 5 * Step);
    }

    [Fact]
    public async Task An_open_breaker_does_not_shorten_a_retry_after()
    {
        // Two calls open the breaker (break 15 s); the second asked for 60 s.
        var guard = Guard(Settings(quickRetries: 0, breakerMinimumThroughput: 2));
        var target = Target(new Answer(AnswerKind.Transient), new Answer(AnswerKind.Transient, TimeSpan.FromSeconds(60)), new Answer(AnswerKind.Ok));
        await Drive(guard.ExecuteAsync("C1", target, WhenOpen, CancellationToken.None));
        await Drive(guard.ExecuteAsync("C1", target, WhenOpen, CancellationToken.None));
        var askedAt = Calls[1];

        var whileOpen = await guard.ExecuteAsync("C1", target, WhenOpen, CancellationToken.None);
        Assert.Equal(AnswerKind.Open, whileOpen.Kind);
        Assert.True(whileOpen.RetryAfter >= TimeSpan.FromSeconds(59), $"told to wait {whileOpen.RetryAfter}");

        // The break is over, the Retry-After is not.
        Pass(TimeSpan.FromSeconds(20));
        var afterBreak = await guard.ExecuteAsync("C1", target, WhenOpen, CancellationToken.None);
        Assert.Equal(AnswerKind.Open, afterBreak.Kind);
        Assert.True(afterBreak.RetryAfter >= TimeSpan.FromSeconds(39), $"told to wait {afterBreak.RetryAfter}");
        Assert.Equal(2, Calls.Count);

        Pass(TimeSpan.FromSeconds(37));
        var last = await Drive(guard.ExecuteAsync("C1", target, WhenOpen, CancellationToken.None));
        Assert.Equal(AnswerKind.Ok, last.Kind);
        Assert.Equal(3, Calls.Count);
        Assert.True(Calls[2] - askedAt >= TimeSpan.FromSeconds(60), $"called again after {Calls[2] - askedAt}");
    }

    [Fact]
    public async Task A_breaker_that_breaks_longer_than_the_retry_after_is_waited_for()
    {
        var guard = Guard(Settings(quickRetries: 0, breakerMinimumThroughput: 2));
        var target = Target(new Answer(AnswerKind.Transient), new Answer(AnswerKind.Transient, TimeSpan.FromSeconds(2)));
        await Drive(guard.ExecuteAsync("C1", target, WhenOpen, CancellationToken.None));
        await Drive(guard.ExecuteAsync("C1", target, WhenOpen, CancellationToken.None));

        var whileOpen = await guard.ExecuteAsync("C1", target, WhenOpen, CancellationToken.None);

        Assert.Equal(AnswerKind.Open, whileOpen.Kind);
        Assert.InRange(whileOpen.RetryAfter!.Value, TimeSpan.FromSeconds(14), TimeSpan.FromSeconds(15));
        Assert.Equal(2, Calls.Count);
    }

    [Fact]
    public async Task In_place_retries_spend_the_send_budget()
    {
        // Burst 3, one more per second: the 4th, 5th and 6th attempts wait for their tokens.
        var guard = Guard(Settings(burst: 3, quickRetries: 5, backoff: DelayBackoffType.Constant, retryDelay: TimeSpan.FromMilliseconds(10)));

        var answer = await Drive(guard.ExecuteAsync("C1", Target(new Answer(AnswerKind.Transient)), WhenOpen, CancellationToken.None));

        Assert.Equal(AnswerKind.Transient, answer.Kind);
        Assert.Equal(6, Calls.Count);
        AssertWithinBudget(Calls, burst: 3);
        Assert.True(Calls[5] - Calls[0] >= TimeSpan.FromSeconds(3) - TimeSpan.FromMilliseconds(1), $"6 attempts took {Calls[5] - Calls[0]}");
    }

    [Fact]
    public async Task Callers_of_one_target_share_its_budget_and_other_targets_have_their_own()
    {
        var guard = Guard(Settings(burst: 3, quickRetries: 0));
        var c1 = Target(new Answer(AnswerKind.Ok));
        var c2Calls = 0;

        var calls = Enumerable.Range(0, 6).Select(_ => guard.ExecuteAsync("C1", c1, WhenOpen, CancellationToken.None)).ToList();
        var other = await guard.ExecuteAsync("C2", _ =>
        {
            c2Calls++;
            return Task.FromResult(new Answer(AnswerKind.Ok));
        }, WhenOpen, CancellationToken.None);
        await Drive(Task.WhenAll(calls));

        Assert.Equal(AnswerKind.Ok, other.Kind);
        Assert.Equal(1, c2Calls);
        Assert.Equal(6, Calls.Count);
        AssertWithinBudget(Calls, burst: 3);
        Assert.True(Calls.Max() - T0 >= TimeSpan.FromSeconds(3) - TimeSpan.FromMilliseconds(1), $"6 calls took {Calls.Max() - T0}");
    }

    [Fact]
    public async Task A_result_neither_ok_nor_transient_is_returned_at_once()
    {
        var guard = Guard(Settings(quickRetries: 5));

        var answer = await Drive(guard.ExecuteAsync("C1", Target(new Answer(AnswerKind.Unknown)), WhenOpen, CancellationToken.None));

        Assert.Equal(AnswerKind.Unknown, answer.Kind);
        Assert.Single(Calls);
    }

    [Fact]
    public async Task A_transient_result_without_retry_after_is_retried_after_the_backoff()
    {
        var guard = Guard(Settings(quickRetries: 2, backoff: DelayBackoffType.Constant, retryDelay: TimeSpan.FromSeconds(1)));

        var answer = await Drive(guard.ExecuteAsync("C1", Target(new Answer(AnswerKind.Transient), new Answer(AnswerKind.Ok)), WhenOpen,
            CancellationToken.None));

        Assert.Equal(AnswerKind.Ok, answer.Kind);
        Assert.Equal(2, Calls.Count);
        Assert.InRange(Calls[1] - Calls[0], TimeSpan.FromMilliseconds(750), TimeSpan.FromMilliseconds(1250) + 5 * Step); // late steps on a busy machine: see above
    }

    /// <summary>In every window, no more calls than the burst plus the tokens earned in it (1/s).</summary>
    private static void AssertWithinBudget(IReadOnlyList<DateTimeOffset> calls, int burst)
    {
        var sorted = calls.Order().ToList();
        for (var i = 0; i < sorted.Count; i++)
            for (var j = i; j < sorted.Count; j++)
            {
                var earned = (int)Math.Floor((sorted[j] - sorted[i]).TotalSeconds + 0.001);
                Assert.True(j - i + 1 <= burst + earned, $"{j - i + 1} calls in {sorted[j] - sorted[i]}");
            }
    }

    private enum AnswerKind { Ok, Transient, Unknown, Open }

    private sealed record Answer(AnswerKind Kind, TimeSpan? RetryAfter = null);
}
