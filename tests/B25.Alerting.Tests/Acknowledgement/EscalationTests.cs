using B25.Alerting.Delivery;
using B25.Alerting.Delivery.Slack;
using B25.Alerting.Incidents;
using B25.Alerting.RiskManager;
using B25.Alerting.Routing;
using B25.Alerting.Storage;
using B25.Alerting.Tests.Support;
using B25.Alerting.Webhooks;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.Acknowledgement;

/// <summary>
/// Escalation on a fake clock: an unacknowledged incident gets a reminder in its thread After its opening, then every
/// RepeatEvery, at most Max times, none once acknowledged or resolved; an unanswered emergency stop pages @here after
/// RiskManager:AnswerTimeout. On the run's storage (SQLite or PostgreSQL).
/// </summary>
public sealed class EscalationTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _time = new(T0);
    private TestStores _database = null!;
    private IncidentProcessor _processor = null!;
    private EscalationMonitor _monitor = null!;
    private Router _router = null!;
    private long _seq;

    public async Task InitializeAsync()
    {
        _database = await TestStores.CreateAsync(_time);
        var routing = new RoutingOptions
        {
            Routes =
            [
                new RouteOptions
                {
                    Name = "critical", Matchers = ["severity=\"critical\""], Slack = new() { Channel = "#crit" },
                    Escalation = new() { After = TimeSpan.FromMinutes(5), RepeatEvery = TimeSpan.FromMinutes(10), Mention = "<!subteam^S0123>", Max = 2 },
                },
                new RouteOptions { Name = "default", Slack = new() { Channel = "#default" } },
            ],
        };
        var slackOptions = Options.Create(new SlackOptions());
        var slack = new SlackNotifier(new SlackLogApi(NullLogger<SlackLogApi>.Instance),
            new SlackRenderer(slackOptions, Options.Create(new TemplateOptions()), Presentation.IncidentPresenterTests.Presenter()),
            slackOptions, _time, NullLogger<SlackNotifier>.Instance);
        IChannelNotifier[] channels = [slack];
        _router = new Router(Options.Create(routing), channels, NullLogger<Router>.Instance);
        _processor = new IncidentProcessor(_database.Journal, _database.Incidents, _router, channels, _time, new DeliverySignal(),
            NullLogger<IncidentProcessor>.Instance);
        _monitor = Monitor(_database.ReadModel);
    }

    private EscalationMonitor Monitor(IIncidentReadModel readModel, int pageSize = 500) =>
        new(new EscalationStore(_database.Provider), readModel, _router, new DeliverySignal(), Options.Create(new RiskManagerOptions()), _time,
            NullLogger<EscalationMonitor>.Instance) { PageSize = pageSize };

    public async Task DisposeAsync() => await _database.DisposeAsync();

    private Task<string> Open(string groupKey, string severity = "critical") => Apply(groupKey, Firing("a1", severity: severity));

    /// <summary>Journals and applies a notification of the group; returns the group's incident.</summary>
    private async Task<string> Apply(string groupKey, params Alert[] alerts)
    {
        var body = System.Text.Encoding.UTF8.GetBytes(Body(groupKey, alerts));
        var (notification, _) = NotificationParser.Parse(body);
        var id = NotificationIdentity.NotificationId(notification!) + $"-{++_seq}";
        await using (var connection = await _database.OpenAsync())
            await connection.ExecuteAsync(
                "INSERT INTO notifications (id, group_id, receiver, group_key, received_at, body) VALUES (@id, @g, 'b25-critical', @groupKey, @at, @body)",
                new { id, g = NotificationIdentity.GroupId("b25-critical", groupKey), groupKey, at = _time.GetUtcNow().ToUnixTimeMilliseconds(), body });
        await _processor.ProcessAsync(id, CancellationToken.None);
        await using var read = await _database.OpenAsync();
        return await read.QuerySingleAsync<string>("SELECT id FROM incidents WHERE group_key = @groupKey", new { groupKey });
    }

    private async Task<List<string>> Notes(string incidentId, string prefix)
    {
        await using var connection = await _database.OpenAsync();
        return (await connection.QueryAsync<string>(
            "SELECT payload FROM deliveries WHERE incident_id = @incidentId AND kind = 'note' AND subject LIKE @prefix ORDER BY id",
            new { incidentId, prefix = prefix + "%" }))
            .Select(p => System.Text.Json.JsonSerializer.Deserialize(p, DeliveryJsonContext.Default.SlackNote)!.Text).ToList();
    }

    [Fact]
    public async Task An_unacknowledged_incident_is_escalated_after_the_delay_then_repeatedly_up_to_the_cap()
    {
        var id = await Open("g1");

        _time.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromSeconds(1));
        Assert.Equal(0, await _monitor.RunOnceAsync(CancellationToken.None));

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, await _monitor.RunOnceAsync(CancellationToken.None));
        Assert.Equal(0, await _monitor.RunOnceAsync(CancellationToken.None)); // the same look again: nothing twice
        var first = Assert.Single(await Notes(id, "escalation:"));
        Assert.Contains("<!subteam^S0123>", first);
        Assert.Contains("reminder 1 of 2", first);

        _time.Advance(TimeSpan.FromMinutes(10) - TimeSpan.FromSeconds(1));
        Assert.Equal(0, await _monitor.RunOnceAsync(CancellationToken.None));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, await _monitor.RunOnceAsync(CancellationToken.None));
        Assert.Contains("reminder 2 of 2", (await Notes(id, "escalation:"))[1]);

        _time.Advance(TimeSpan.FromHours(2));
        Assert.Equal(0, await _monitor.RunOnceAsync(CancellationToken.None));
        Assert.Equal(2, (await Notes(id, "escalation:")).Count);
    }

    [Fact]
    public async Task An_acknowledged_incident_and_a_route_without_escalation_are_left_alone()
    {
        var acknowledged = await Open("g1");
        var quiet = await Open("g2", severity: "warning");
        var actions = new IncidentActionStore(_database.Provider);
        await actions.RecordAsync(new NewAction(acknowledged, "k1", "acknowledge", "U0ALICE", "slack", _time.GetUtcNow().ToUnixTimeMilliseconds()),
            _ => new ActionDecision(ActionResults.Acknowledged, Change: HandlingChangeKind.Acknowledge), CancellationToken.None);

        _time.Advance(TimeSpan.FromHours(1));

        Assert.Equal(0, await _monitor.RunOnceAsync(CancellationToken.None));
        Assert.Empty(await Notes(acknowledged, "escalation:"));
        Assert.Empty(await Notes(quiet, "escalation:"));
    }

    [Fact]
    public async Task A_due_incident_is_escalated_behind_any_number_of_older_ones_that_are_not()
    {
        // Read two at a time: three older incidents that get no reminder (a route without escalation, one already reminded and
        // waiting for its repeat) fill more than a page ahead of the one that is due.
        var monitor = Monitor(_database.ReadModel, pageSize: 2);
        var reminded = await Open("g0");
        _time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(1, await monitor.RunOnceAsync(CancellationToken.None));
        var quiet = new[] { await Open("g1", severity: "warning"), await Open("g2", severity: "warning"), await Open("g3", severity: "warning") };
        _time.Advance(TimeSpan.FromSeconds(1)); // opened last: it comes last in the look's order
        var due = await Open("g4");

        _time.Advance(TimeSpan.FromMinutes(5));

        Assert.Equal(1, await monitor.RunOnceAsync(CancellationToken.None));
        Assert.Contains("reminder 1 of 2", Assert.Single(await Notes(due, "escalation:")));
        Assert.Single(await Notes(reminded, "escalation:"));
        foreach (var id in quiet) Assert.Empty(await Notes(id, "escalation:"));
    }

    [Fact]
    public async Task An_open_incident_is_read_again_only_when_it_changed()
    {
        var loads = new CountingReadModel(_database.ReadModel);
        var monitor = Monitor(loads);
        var quiet = await Open("g1", severity: "warning");
        _time.Advance(TimeSpan.FromHours(1));

        for (var i = 0; i < 3; i++) Assert.Equal(0, await monitor.RunOnceAsync(CancellationToken.None));
        Assert.Equal(1, loads.Loads);

        // A critical alert joins the group: its route escalates now, so the incident is read again and reminded.
        Assert.Equal(quiet, await Apply("g1", Firing("a1", severity: "warning"), Firing("a2", severity: "critical")));
        Assert.Equal(1, await monitor.RunOnceAsync(CancellationToken.None));
        Assert.Equal(2, loads.Loads);
        var notes = await Notes(quiet, "escalation:"); // one in each channel the incident's message is in (#default, #crit)
        Assert.Equal(2, notes.Count);
        Assert.All(notes, n => Assert.Contains("reminder 1 of 2", n));
    }

    /// <summary>The read model, counting the incidents it loads.</summary>
    private sealed class CountingReadModel(IIncidentReadModel inner) : IIncidentReadModel
    {
        public int Loads;

        public Task<IncidentView?> LoadAsync(string incidentId, int maxAlerts, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Loads);
            return inner.LoadAsync(incidentId, maxAlerts, cancellationToken);
        }

        public Task<IReadOnlyList<string>> ListAsync(string state, int limit, CancellationToken cancellationToken) =>
            inner.ListAsync(state, limit, cancellationToken);

        public Task<IReadOnlyList<DeliveryRow>> DeliveriesAsync(string incidentId, CancellationToken cancellationToken) =>
            inner.DeliveriesAsync(incidentId, cancellationToken);

        public Task<bool> SupersededAtAsync(IncidentView incident, string channel, string target, CancellationToken cancellationToken) =>
            inner.SupersededAtAsync(incident, channel, target, cancellationToken);
    }

    [Fact]
    public async Task An_emergency_stop_without_an_answer_pages_here_after_the_answer_timeout()
    {
        var id = await Open("g1");
        await using (var connection = await _database.OpenAsync())
            await connection.ExecuteAsync(
                """
                INSERT INTO emergency_stops (command_id, incident_id, alert_name, fingerprint, starts_at, scope, status, requested_at)
                VALUES ('cmd-1', @id, 'HighDrawdown', 'a1', 'x', '{}', 'requested', @now)
                """, new { id, now = _time.GetUtcNow().ToUnixTimeMilliseconds() });
        _time.Advance(TimeSpan.FromSeconds(30)); // long before the escalation is due

        Assert.Equal(1, await _monitor.RunOnceAsync(CancellationToken.None));
        var page = Assert.Single(await Notes(id, "stop-unanswered:"));
        Assert.Contains("<!here>", page);
        Assert.Contains("cmd-1", page);
        Assert.Equal(0, await _monitor.RunOnceAsync(CancellationToken.None));
        // The incident's message is edited too, so its line for the stop stops reading "waiting for its answer".
        await using (var connection = await _database.OpenAsync())
            Assert.Equal(1, await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM deliveries WHERE incident_id = @id AND kind = 'update' AND subject = 'stop-unanswered:cmd-1'", new { id }));
        var view = await _database.ReadModel.LoadAsync(id, 40, CancellationToken.None);
        Assert.True(Assert.Single(view!.EmergencyStops!).UnansweredPaged);
    }

    [Fact]
    public async Task An_answered_stop_or_one_within_the_timeout_pages_nobody()
    {
        var id = await Open("g1");
        await using (var connection = await _database.OpenAsync())
            await connection.ExecuteAsync(
                """
                INSERT INTO emergency_stops (command_id, incident_id, alert_name, fingerprint, starts_at, scope, status, requested_at)
                VALUES ('cmd-1', @id, 'HighDrawdown', 'a1', 'x', '{}', 'requested', @now),
                       ('cmd-2', @id, 'HighDrawdown', 'a2', 'x', '{}', 'acknowledged', @now)
                """, new { id, now = _time.GetUtcNow().ToUnixTimeMilliseconds() });

        _time.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(0, await _monitor.RunOnceAsync(CancellationToken.None));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, await _monitor.RunOnceAsync(CancellationToken.None));
        Assert.DoesNotContain(await Notes(id, "stop-unanswered:"), n => n.Contains("cmd-2"));
    }
}
