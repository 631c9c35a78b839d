using System.Text.Json;
using B25.Alerting.Delivery;
using B25.Alerting.Incidents;
using B25.Alerting.Routing;
using B25.Alerting.Storage;
using B25.Alerting.Webhooks;
using B25.Alerting.Tests.Support;
using Dapper;
using MassTransit;
using MassTransit.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests;

/// <summary>The pure transition function of architecture.md.</summary>
public sealed class IncidentStateMachineTests
{
    private static readonly AlertKey A = new("a", "t0");
    private static readonly AlertKey B = new("b", "t0");

    private static IncidentTransition Apply(Dictionary<AlertKey, AlertState> known, bool open, params (AlertKey, AlertState)[] alerts) =>
        IncidentStateMachine.Apply(known, known.Keys.ToList(), open, alerts);

    [Fact]
    public void Firing_alert_with_no_open_incident_opens_one() =>
        Assert.Equal(TransitionKind.Open, Apply([], false, (A, AlertState.Firing)).Kind);

    [Fact]
    public void Resolved_alert_never_seen_firing_opens_nothing_and_is_remembered()
    {
        var t = Apply([], false, (A, AlertState.Resolved));
        Assert.Equal(TransitionKind.None, t.Kind);
        Assert.Equal([A], t.RememberedResolved);
    }

    [Fact]
    public void Known_firing_again_is_a_repeat() =>
        Assert.Equal(TransitionKind.Repeat, Apply(new() { [A] = AlertState.Firing }, true, (A, AlertState.Firing)).Kind);

    [Fact]
    public void New_alert_in_open_incident_is_a_change()
    {
        var t = Apply(new() { [A] = AlertState.Firing }, true, (A, AlertState.Firing), (B, AlertState.Firing));
        Assert.Equal(TransitionKind.Change, t.Kind);
        Assert.Equal([B], t.Joined);
    }

    [Fact]
    public void Some_resolved_is_a_change_all_resolved_closes()
    {
        var known = new Dictionary<AlertKey, AlertState> { [A] = AlertState.Firing, [B] = AlertState.Firing };
        Assert.Equal(TransitionKind.Change, Apply(known, true, (A, AlertState.Resolved), (B, AlertState.Firing)).Kind);
        var close = Apply(known, true, (A, AlertState.Resolved), (B, AlertState.Resolved));
        Assert.Equal(TransitionKind.Close, close.Kind);
        Assert.Equal([A, B], close.Resolved);
    }

    [Fact]
    public void Alert_missing_from_a_notification_is_not_resolved_by_omission()
    {
        var known = new Dictionary<AlertKey, AlertState> { [A] = AlertState.Firing, [B] = AlertState.Firing };
        var t = Apply(known, true, (A, AlertState.Resolved));
        Assert.Equal(TransitionKind.Change, t.Kind);
    }

    [Fact]
    public void Firing_copy_of_a_resolved_occurrence_changes_nothing()
    {
        var known = new Dictionary<AlertKey, AlertState> { [A] = AlertState.Resolved };
        Assert.Equal(TransitionKind.None, Apply(known, false, (A, AlertState.Firing)).Kind);
        Assert.Equal(TransitionKind.Repeat, IncidentStateMachine.Apply(
            new Dictionary<AlertKey, AlertState> { [A] = AlertState.Resolved, [B] = AlertState.Firing }, [B], true, [(A, AlertState.Firing)]).Kind);
    }

    [Fact]
    public void The_same_occurrence_twice_in_one_body_counts_once()
    {
        var t = Apply([], false, (A, AlertState.Firing), (A, AlertState.Firing));
        Assert.Equal([A], t.Joined);
    }
}

/// <summary>The state machine applied to journaled notifications on a real SQLite file, time from a FakeTimeProvider.</summary>
public sealed class IncidentProcessorTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _time = new(T0);
    private TestStores _database = null!;
    private IncidentProcessor _processor = null!;
    private long _seq;

    public async Task InitializeAsync()
    {
        _database = await TestStores.CreateAsync(_time);
        var routing = new RoutingOptions
        {
            Routes =
            [
                new RouteOptions { Name = "critical", Matchers = ["severity=\"critical\""], Continue = true, Slack = new() { Channel = "#crit" } },
                new RouteOptions { Name = "db", Matchers = ["alertname=~\"Database.*\""], Slack = new() { Channel = "#db" } },
                new RouteOptions { Name = "default", Slack = new() { Channel = "#default" } },
            ],
        };
        var slack = new B25.Alerting.Delivery.Slack.SlackNotifier(
            new B25.Alerting.Delivery.Slack.SlackLogApi(NullLogger<B25.Alerting.Delivery.Slack.SlackLogApi>.Instance),
            new B25.Alerting.Delivery.Slack.SlackRenderer(Options.Create(new B25.Alerting.Delivery.Slack.SlackOptions()), Options.Create(new B25.Alerting.Delivery.Slack.TemplateOptions()),
                Presentation.IncidentPresenterTests.Presenter()),
            Options.Create(new B25.Alerting.Delivery.Slack.SlackOptions()), _time, NullLogger<B25.Alerting.Delivery.Slack.SlackNotifier>.Instance);
        IChannelNotifier[] channels = [slack];
        _processor = new IncidentProcessor(_database.Journal, _database.Incidents, new Router(Options.Create(routing), channels, NullLogger<Router>.Instance), channels,
            _time, new DeliverySignal(), NullLogger<IncidentProcessor>.Instance);
    }

    public async Task DisposeAsync() => await _database.DisposeAsync();

    private async Task<ProcessOutcome> Process(string groupKey, params Alert[] alerts)
    {
        var body = System.Text.Encoding.UTF8.GetBytes(Body(groupKey, alerts));
        var (notification, error) = NotificationParser.Parse(body);
        Assert.Null(error);
        var id = NotificationIdentity.NotificationId(notification!) + $"-{++_seq}"; // distinct rows: exercise the state machine, not the journal
        await using (var connection = await _database.OpenAsync())
        {
            await connection.ExecuteAsync(
                "INSERT INTO notifications (id, group_id, receiver, group_key, received_at, body) VALUES (@id, @g, 'b25-critical', @groupKey, @at, @body)",
                new { id, g = NotificationIdentity.GroupId("b25-critical", groupKey), groupKey, at = _time.GetUtcNow().ToUnixTimeMilliseconds(), body });
        }
        var outcome = await _processor.ProcessAsync(id, CancellationToken.None);
        Assert.Equal(ProcessOutcome.AlreadyProcessed, await _processor.ProcessAsync(id, CancellationToken.None));
        return outcome;
    }

    private async Task<List<(string Target, string Kind, long Revision)>> Deliveries()
    {
        await using var connection = await _database.OpenAsync();
        return (await connection.QueryAsync<(string, string, long)>("SELECT target, kind, revision FROM deliveries ORDER BY id")).ToList();
    }

    [Fact]
    public async Task Opening_records_time_and_one_post_per_routed_target()
    {
        Assert.Equal(ProcessOutcome.Opened, await Process("g", Firing("a", alertname: "DatabaseDown")));

        Assert.Equal([("#crit", "post", 1L), ("#db", "post", 1L)], (await Deliveries()).OrderBy(d => d.Target).ToList());
        await using var connection = await _database.OpenAsync();
        Assert.Equal(T0.ToUnixTimeMilliseconds(), await connection.ExecuteScalarAsync<long>("SELECT opened_at FROM incidents"));
    }

    [Fact]
    public async Task Life_of_an_incident_writes_update_and_reply_per_change_and_closes_at_the_fake_time()
    {
        await Process("g", Firing("a", severity: "warning"));
        _time.Advance(TimeSpan.FromMinutes(3));
        Assert.Equal(ProcessOutcome.Changed, await Process("g", Firing("a", severity: "warning"), Firing("b", severity: "warning")));
        Assert.Equal(ProcessOutcome.Repeat, await Process("g", Firing("a", severity: "warning"), Firing("b", severity: "warning")));
        _time.Advance(TimeSpan.FromMinutes(7));
        Assert.Equal(ProcessOutcome.Closed, await Process("g", Resolved("a", severity: "warning"), Resolved("b", severity: "warning")));

        Assert.Equal(
            [("#default", "post", 1L), ("#default", "update", 2L), ("#default", "reply", 2L), ("#default", "update", 3L), ("#default", "reply", 3L)],
            await Deliveries());
        await using var connection = await _database.OpenAsync();
        var (openedAt, closedAt, state) = await connection.QuerySingleAsync<(long, long, string)>("SELECT opened_at, closed_at, state FROM incidents");
        Assert.Equal("closed", state);
        Assert.Equal(TimeSpan.FromMinutes(10), TimeSpan.FromMilliseconds(closedAt - openedAt));
    }

    [Fact]
    public async Task Joining_alert_that_routes_elsewhere_gets_its_own_first_message()
    {
        await Process("g", Firing("a", severity: "warning"));
        await Process("g", Firing("a", severity: "warning"), Firing("b", severity: "critical"));

        Assert.Equal(
            [("#default", "post", 1L), ("#default", "update", 2L), ("#default", "reply", 2L), ("#crit", "post", 2L)],
            await Deliveries());
    }

    /// <summary>Journals a body without applying it; returns its id.</summary>
    private async Task<string> Journal(string groupKey, byte[] body)
    {
        var id = $"n-{++_seq}";
        await using var connection = await _database.OpenAsync();
        await connection.ExecuteAsync(
            "INSERT INTO notifications (id, group_id, receiver, group_key, received_at, body) VALUES (@id, @g, 'b25-critical', @groupKey, @at, @body)",
            new { id, g = NotificationIdentity.GroupId("b25-critical", groupKey), groupKey, at = _time.GetUtcNow().ToUnixTimeMilliseconds(), body });
        return id;
    }

    private Task<string> Journal(string groupKey, params Alert[] alerts) => Journal(groupKey, System.Text.Encoding.UTF8.GetBytes(Body(groupKey, alerts)));

    private async Task<List<(string Id, string? Outcome)>> JournalOutcomes()
    {
        await using var connection = await _database.OpenAsync();
        return (await connection.QueryAsync<(string, string?)>("SELECT id, outcome FROM notifications ORDER BY seq")).ToList();
    }

    [Fact]
    public async Task Resolved_notification_delivered_before_its_firing_one_still_pages_once_and_closes()
    {
        var firing = await Journal("g", Firing("a"));
        var resolved = await Journal("g", Resolved("a"));

        // The bus hands over the later notification first (redelivery, recovery sweep, broker restart).
        Assert.Equal(ProcessOutcome.Closed, await _processor.ProcessAsync(resolved, CancellationToken.None));
        Assert.Equal(ProcessOutcome.AlreadyProcessed, await _processor.ProcessAsync(firing, CancellationToken.None));

        Assert.Equal([(firing, "Opened"), (resolved, "Closed")], await JournalOutcomes());
        Assert.Equal([("#crit", "post", 1L), ("#crit", "update", 2L), ("#crit", "reply", 2L)], (await Deliveries()).Where(d => d.Target == "#crit"));
        await using var connection = await _database.OpenAsync();
        Assert.Equal("closed", await connection.ExecuteScalarAsync<string>("SELECT state FROM incidents"));
    }

    [Fact]
    public async Task A_group_is_applied_in_journal_order_and_other_groups_are_left_alone()
    {
        var first = await Journal("g", Firing("a"));
        var other = await Journal("h", Firing("x"));
        var second = await Journal("g", Firing("a"), Firing("b"));
        var third = await Journal("g", Resolved("a"), Resolved("b"));

        Assert.Equal(ProcessOutcome.Changed, await _processor.ProcessAsync(second, CancellationToken.None));
        Assert.Equal([(first, "Opened"), (other, null), (second, "Changed"), (third, null)], await JournalOutcomes());

        Assert.Equal(ProcessOutcome.Closed, await _processor.ProcessAsync(third, CancellationToken.None));
        Assert.Equal(ProcessOutcome.Opened, await _processor.ProcessAsync(other, CancellationToken.None));
        Assert.Equal([(first, "Opened"), (other, "Opened"), (second, "Changed"), (third, "Closed")], await JournalOutcomes());
    }

    [Fact]
    public async Task A_notification_that_cannot_be_applied_is_quarantined_after_a_few_attempts_and_does_not_block_its_group()
    {
        // Journaled before intake checked everything (or by a bug): a label value that is not a string.
        var poison = await Journal("g", System.Text.Encoding.UTF8.GetBytes(Body("g", Firing("a")).Replace("\"instance\":\"a\"", "\"instance\":7")));
        var later = await Journal("g", Firing("b"));

        for (var attempt = 1; attempt < IncidentProcessor.MaxAttempts; attempt++)
            await Assert.ThrowsAnyAsync<Exception>(() => _processor.ProcessAsync(later, CancellationToken.None));
        Assert.Equal([(poison, null), (later, null)], await JournalOutcomes());

        Assert.Equal(ProcessOutcome.Opened, await _processor.ProcessAsync(later, CancellationToken.None));
        Assert.Equal([(poison, "Quarantined"), (later, "Opened")], await JournalOutcomes());
        await using var connection = await _database.OpenAsync();
        var (attempts, error) = await connection.QuerySingleAsync<(long, string)>("SELECT attempts, last_error FROM notifications WHERE id = @poison", new { poison });
        Assert.Equal(IncidentProcessor.MaxAttempts, attempts);
        Assert.Contains("JsonException", error);
        Assert.Equal([("#crit", "post", 1L)], (await Deliveries()).Where(d => d.Target == "#crit"));
    }

    [Fact]
    public async Task A_large_notification_is_read_from_the_journal_as_a_stream_and_applied_whole()
    {
        // Megabytes of body, bound from the journal's stream (SQLite blob I/O, PostgreSQL sequential access) across many of
        // the reader's chunks: every alert is stored with the labels and annotations it was sent with.
        var alerts = Enumerable.Range(0, 3_000).Select(i => Firing($"big{i:D4}") with
        {
            Labels = new() { ["alertname"] = "HighErrorRate", ["severity"] = "critical", ["instance"] = $"host-{i}:9100", ["注文"] = "😀 \"q\"" },
            Annotations = new() { ["summary"] = $"Error rate above 5% on host-{i} {new string('x', i % 700)}", ["runbook_url"] = "http://alerting.test/r" },
        }).ToArray();
        Assert.True(Body("g-big", alerts).Length > 1_000_000);

        Assert.Equal(ProcessOutcome.Opened, await Process("g-big", alerts));

        await using var connection = await _database.OpenAsync();
        var stored = (await connection.QueryAsync<(string Fingerprint, string Labels, string Annotations)>(
            "SELECT fingerprint, labels, annotations FROM alerts")).ToDictionary(a => a.Fingerprint);
        Assert.Equal(alerts.Length, stored.Count);
        foreach (var alert in alerts)
        {
            Assert.Equal(JsonSerializer.Serialize(alert.Labels, WebhookJsonContext.Default.DictionaryStringString), stored[alert.Fingerprint].Labels);
            Assert.Equal(JsonSerializer.Serialize(alert.Annotations, WebhookJsonContext.Default.DictionaryStringString), stored[alert.Fingerprint].Annotations);
        }
    }

    [Fact]
    public async Task Late_firing_copy_after_close_opens_nothing_new_firing_does()
    {
        await Process("g", Firing("a"));
        await Process("g", Resolved("a"));
        Assert.Equal(ProcessOutcome.None, await Process("g", Firing("a")));
        Assert.Equal(ProcessOutcome.Opened, await Process("g", Firing("a", startsAt: T0.AddHours(1))));

        await using var connection = await _database.OpenAsync();
        Assert.Equal(2L, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM incidents"));
    }
}

/// <summary>The journal keeps processed notifications for Storage:JournalRetention, and unprocessed ones always.</summary>
public sealed class JournalRetentionTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _time = new(T0);
    private TestStores _database = null!;

    public async Task InitializeAsync() => _database = await TestStores.CreateAsync(_time);

    public async Task DisposeAsync() => await _database.DisposeAsync();

    [Fact]
    public async Task Prune_deletes_only_processed_notifications_older_than_the_retention()
    {
        var day = (long)TimeSpan.FromDays(1).TotalMilliseconds;
        var now = T0.ToUnixTimeMilliseconds();
        await using (var connection = await _database.OpenAsync())
        {
            foreach (var (id, processedAt) in new (string, long?)[] { ("old", now - 8 * day), ("recent", now - 6 * day), ("unprocessed", null) })
                await connection.ExecuteAsync(
                    "INSERT INTO notifications (id, group_id, receiver, group_key, received_at, body, processed_at) VALUES (@id, 'g', 'r', 'k', 0, @body, @processedAt)",
                    new { id, processedAt, body = "{}"u8.ToArray() });
        }
        var recovery = new B25.Alerting.Pipeline.NotificationRecovery(_database.Journal, _database.Provider, null!, Options.Create(new StorageOptions()), _time,
            NullLogger<B25.Alerting.Pipeline.NotificationRecovery>.Instance);

        Assert.Equal(1, await recovery.PruneAsync(CancellationToken.None));

        await using var check = await _database.OpenAsync();
        Assert.Equal(["recent", "unprocessed"], (await check.QueryAsync<string>("SELECT id FROM notifications ORDER BY id")).ToList());
    }
}

/// <summary>The recovery sweep republishes one notification per alert group: its latest unprocessed one.</summary>
public sealed class RecoverySweepTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _time = new(T0);
    private TestStores _database = null!;
    private ServiceProvider _services = null!;

    public async Task InitializeAsync()
    {
        _database = await TestStores.CreateAsync(_time);
        _services = new ServiceCollection().AddMassTransitTestHarness().BuildServiceProvider(true);
        await _services.GetRequiredService<ITestHarness>().Start();
    }

    public async Task DisposeAsync()
    {
        await _services.DisposeAsync();
        await _database.DisposeAsync();
    }

    [Fact]
    public async Task Sweep_publishes_the_latest_unprocessed_notification_of_each_group_older_than_the_cutoff()
    {
        var now = T0.ToUnixTimeMilliseconds();
        var old = now - 60_000;
        await using (var connection = await _database.OpenAsync())
        {
            foreach (var (id, group, receivedAt, processedAt) in new (string, string, long, long?)[]
                     {
                         ("g-1", "aa", old, null), ("h-1", "bb", old, now), ("g-2", "aa", old, null), ("h-2", "bb", old, null),
                         ("h-3", "bb", now, null), // too recent: the live publish may still be on its way
                         ("k-1", "cc", old, now), // processed: nothing to do
                     })
                await connection.ExecuteAsync(
                    "INSERT INTO notifications (id, group_id, receiver, group_key, received_at, body, processed_at) VALUES (@id, @group, 'r', 'k', @receivedAt, @body, @processedAt)",
                    new { id, group = group + new string('0', 62), receivedAt, processedAt, body = "{}"u8.ToArray() });
        }
        var harness = _services.GetRequiredService<ITestHarness>();
        // The sweep publishes through the publisher (within its bound), which publishes to the bus.
        using var publisher = new B25.Alerting.Pipeline.NotificationPublisher(harness.Bus, _database.Journal,
            Options.Create(new B25.Alerting.Pipeline.BusOptions()), NullLogger<B25.Alerting.Pipeline.NotificationPublisher>.Instance);
        await publisher.StartAsync(CancellationToken.None);
        var recovery = new B25.Alerting.Pipeline.NotificationRecovery(_database.Journal, _database.Provider, publisher, Options.Create(new StorageOptions()), _time,
            NullLogger<B25.Alerting.Pipeline.NotificationRecovery>.Instance);

        Assert.Equal(2, await recovery.SweepAsync(TimeSpan.FromSeconds(30), CancellationToken.None));

        await Eventually.True(() => harness.Published.Select<B25.Alerting.Pipeline.NotificationAccepted>().Count() == 2, "both published");
        var published = harness.Published.Select<B25.Alerting.Pipeline.NotificationAccepted>().Select(m => m.Context.Message.NotificationId).Order().ToList();
        Assert.Equal(["g-2", "h-2"], published);
        await publisher.StopAsync(CancellationToken.None);
    }
}
