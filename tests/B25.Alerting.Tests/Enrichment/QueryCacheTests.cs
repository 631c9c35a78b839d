using B25.Alerting.Enrichment;
using Microsoft.Extensions.Time.Testing;

namespace B25.Alerting.Tests.Enrichment;

/// <summary>A cached answer serves a storm, never an alert that started after it was asked.</summary>
public sealed class QueryCacheTests
{
    [Fact]
    public async Task An_answer_asked_before_an_alert_started_is_asked_again()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 3, 0, 0, TimeSpan.Zero));
        var cache = new QueryCache<string>(time, TimeSpan.FromSeconds(30));
        var asked = 0;
        Task<QueryOutcome<string>> Fetch() => Task.FromResult(new QueryOutcome<string>($"answer {++asked}"));

        var first = cache.GetOrStart("up == 0", Fetch);
        Assert.True(first.Started);
        Assert.Equal("answer 1", (await first.Outcome).Value);
        var askedAt = time.GetUtcNow();
        time.Advance(TimeSpan.FromSeconds(10));

        // Alerts that started before the answer was asked share it (the storm).
        var shared = cache.GetOrStart("up == 0", Fetch, askedSince: askedAt.AddSeconds(-5));
        Assert.False(shared.Started);
        Assert.Equal("answer 1", (await shared.Outcome).Value);

        // An alert that started after it: the answer could only show the series before the alert fired.
        var fresh = cache.GetOrStart("up == 0", Fetch, askedSince: askedAt.AddSeconds(5));
        Assert.True(fresh.Started);
        Assert.Equal("answer 2", (await fresh.Outcome).Value);
        Assert.Equal("answer 2", (await cache.TryGet("up == 0")!).Value);
    }
}
