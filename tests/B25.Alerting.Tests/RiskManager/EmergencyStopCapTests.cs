using B25.Alerting.RiskManager;
using B25.Alerting.Storage;
using B25.Alerting.Tests.Support;
using B25.Alerting.Webhooks;
using Dapper;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.RiskManager;

/// <summary>
/// The emergency-stop cap counts stops by when their alerts fired, not by when they are sent: a backlog released at once
/// after an outage passes, a burst that fired together does not, in any order of arrival and across replicas. On the
/// run's storage (SQLite or PostgreSQL).
/// </summary>
public sealed class EmergencyStopCapTests : IAsyncLifetime
{
    private static readonly long Window = (long)TimeSpan.FromMinutes(10).TotalMilliseconds;
    private const int Cap = 3;
    private TestStores _database = null!;

    public async Task InitializeAsync()
    {
        _database = await TestStores.CreateAsync();
        await using var connection = await _database.OpenAsync();
        await connection.ExecuteAsync(
            """
            INSERT INTO incidents (id, group_id, receiver, group_key, state, revision, opened_at, updated_at, group_labels, common_labels, common_annotations, external_url)
            VALUES ('inc', 'g', 'r', 'k', 'open', 1, 0, 0, '{}', '{}', '{}', '')
            """);
    }

    public async Task DisposeAsync() => await _database.DisposeAsync();

    private static StopRequest Request(int i, DateTimeOffset firedAt) =>
        new($"cmd-{i}", "inc", "RiskLimitViolation", $"fp{i}", AlertKey.Format(firedAt), "{}", firedAt.ToUnixTimeMilliseconds());

    private static Task<StopStart> Begin(TestStores stores, StopRequest request, DateTimeOffset sentAt) =>
        stores.Stops.BeginAsync(request, sentAt.ToUnixTimeMilliseconds(), Window, Cap, dryRun: false, (_, _) => null, CancellationToken.None);

    [Fact]
    public async Task A_backlog_whose_alerts_fired_over_an_hour_is_not_suppressed_when_released_in_one_second()
    {
        // Twelve alerts fired 5 minutes apart while the broker (or the database) was down; all sent within one second, an hour later.
        var released = T0.AddHours(2);
        var starts = new List<StopStart>();
        foreach (var i in new[] { 7, 0, 11, 3, 5, 1, 9, 2, 10, 4, 8, 6 }) // not in firing order either
            starts.Add(await Begin(_database, Request(i, T0.AddMinutes(5 * i)), released.AddMilliseconds(i)));

        Assert.All(starts, s => Assert.Equal("requesting", s.Status));
    }

    [Fact]
    public async Task A_burst_that_fired_together_trips_the_cap_even_when_sent_an_hour_apart_and_out_of_order()
    {
        // Six alerts fired within a minute; their stops go out slowly, 15 minutes apart (a send-time cap would pass them
        // all), the latest-fired first.
        var starts = new List<StopStart>();
        for (var i = 5; i >= 0; i--)
            starts.Add(await Begin(_database, Request(i, T0.AddSeconds(10 * i)), T0.AddMinutes(15 * (6 - i))));

        Assert.Equal(["requesting", "requesting", "requesting", "suppressed", "suppressed", "suppressed"], starts.Select(s => s.Status));
        Assert.Equal(Cap, starts[3].Recent);
    }

    [Fact]
    public async Task A_late_alert_counts_where_it_fired()
    {
        // Three stops fired around T0 use up that window; a fourth that fired at T0 but arrives a day late is suppressed,
        // one that fired an hour later arriving at the same moment is not.
        for (var i = 0; i < Cap; i++)
            Assert.Equal("requesting", (await Begin(_database, Request(i, T0.AddMinutes(i)), T0.AddMinutes(i))).Status);

        var late = T0.AddDays(1);
        Assert.Equal("suppressed", (await Begin(_database, Request(10, T0.AddMinutes(4)), late)).Status);
        Assert.Equal("requesting", (await Begin(_database, Request(11, T0.AddHours(1)), late)).Status);
    }

    [Fact]
    public async Task Dry_runs_and_suppressed_stops_do_not_count()
    {
        await _database.Stops.BeginAsync(Request(0, T0), T0.ToUnixTimeMilliseconds(), Window, Cap, dryRun: true, (_, _) => null, CancellationToken.None);
        var starts = new List<StopStart>();
        for (var i = 1; i <= Cap + 2; i++) starts.Add(await Begin(_database, Request(i, T0), T0));

        Assert.Equal(Cap, starts.Count(s => s.Status == "requesting"));
        Assert.All(starts.Skip(Cap), s => Assert.Equal(Cap, s.Recent)); // the suppressed ones did not add to the count
    }

    [Fact]
    public async Task The_cap_holds_for_replicas_asking_at_the_same_moment()
    {
        var replicas = Enumerable.Range(0, 4).Select(i => _database.Replica($"r{i}")).ToList();
        try
        {
            // Twelve stops that fired together, asked at once from four replicas.
            var starts = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => Begin(replicas[i % replicas.Count], Request(i, T0.AddSeconds(i)), T0)));

            Assert.Equal(Cap, starts.Count(s => s.Status == "requesting"));
            await using var connection = await _database.OpenAsync();
            Assert.Equal(Cap, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM emergency_stops WHERE status = 'requesting'"));
        }
        finally
        {
            foreach (var r in replicas) await r.DisposeAsync();
        }
    }

    [Theory]
    [InlineData(new long[] { }, 0, 0)]
    [InlineData(new long[] { 0, 0, 0 }, 0, 3)]
    [InlineData(new long[] { 0, 5, 9 }, 9, 3)] // all within one window with it
    [InlineData(new long[] { 0, 5, 10 }, 5, 2)] // 0..9 or 5..14: two others each
    [InlineData(new long[] { 1, 2, 3 }, 0, 3)] // fired after it, arrived before it
    [InlineData(new long[] { -9, 9 }, 0, 1)] // 19 apart: no window of 10 holds both with it
    [InlineData(new long[] { -6, -6, 5, 5 }, 0, 2)] // 11 apart: either pair, not both
    [InlineData(new long[] { -5, -5, 4, 4 }, 0, 4)]
    public void Busiest_is_the_most_stops_in_one_window_that_holds_the_new_one(long[] others, long firedAt, long expected) =>
        Assert.Equal(expected, StopCap.Busiest(others, firedAt, window: 10));

    [Fact]
    public void A_firing_time_ahead_of_the_clock_counts_now()
    {
        var command = EmergencyStopCommand.For(new AlertmanagerAlert
        {
            Status = "firing", Fingerprint = "fp", StartsAt = T0.AddMinutes(30), Labels = new() { ["alertname"] = "RiskLimitViolation" },
        });
        Assert.Equal(T0.ToUnixTimeMilliseconds(), EmergencyStopNotifier.FiredAt(command, T0));
        Assert.Equal(T0.AddMinutes(30).ToUnixTimeMilliseconds(), EmergencyStopNotifier.FiredAt(command, T0.AddHours(1)));
    }
}
