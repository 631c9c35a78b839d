using B25.Alerting.Delivery;
using B25.Alerting.Delivery.Slack;
using B25.Alerting.Hosting;
using B25.Alerting.Incidents;
using B25.Alerting.RiskManager;
using B25.Alerting.Routing;
using B25.Alerting.Silences;
using B25.Alerting.Storage;
using B25.Alerting.Tests.Support;
using B25.Alerting.Webhooks;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.Acknowledgement;

/// <summary>
/// A human action takes its place in the alert group's order: a notification journaled before it is applied first,
/// whatever the bus is doing. On the run's storage.
/// </summary>
public sealed class ActionOrderTests : IAsyncLifetime
{
    private TestStores _database = null!;
    private IncidentProcessor _processor = null!;
    private IncidentActions _actions = null!;
    private long _seq;

    public async Task InitializeAsync()
    {
        _database = await TestStores.CreateAsync();
        var routing = new RoutingOptions { Routes = [new RouteOptions { Name = "all", Slack = new() { Channel = "#all" } }] };
        var slackOptions = Options.Create(new SlackOptions());
        var slack = new SlackNotifier(new SlackLogApi(NullLogger<SlackLogApi>.Instance),
            new SlackRenderer(slackOptions, Options.Create(new TemplateOptions()), Presentation.IncidentPresenterTests.Presenter()),
            slackOptions, TimeProvider.System, NullLogger<SlackNotifier>.Instance);
        IChannelNotifier[] channels = [slack];
        _processor = new IncidentProcessor(_database.Journal, _database.Incidents, new Router(Options.Create(routing), channels, NullLogger<Router>.Instance),
            channels, TimeProvider.System, new DeliverySignal(), NullLogger<IncidentProcessor>.Instance);
        _actions = new IncidentActions(new IncidentActionStore(_database.Provider), _processor,
            new AlertmanagerSilences(new HttpClient(), Options.Create(new AlertmanagerOptions()), NullLogger<AlertmanagerSilences>.Instance),
            new DeliverySignal(), Options.Create(new ServiceOptions()), Options.Create(new RiskManagerOptions()), TimeProvider.System,
            NullLogger<IncidentActions>.Instance);
    }

    public async Task DisposeAsync() => await _database.DisposeAsync();

    /// <summary>Journals a notification (as the webhook does) and returns its id; applied only when asked.</summary>
    private async Task<string> Journal(string groupKey, params Alert[] alerts)
    {
        var body = System.Text.Encoding.UTF8.GetBytes(Body(groupKey, alerts));
        var (notification, _) = NotificationParser.Parse(body);
        var id = NotificationIdentity.NotificationId(notification!) + $"-{++_seq}";
        await using var connection = await _database.OpenAsync();
        await connection.ExecuteAsync(
            "INSERT INTO notifications (id, group_id, receiver, group_key, received_at, body) VALUES (@id, @g, 'b25-critical', @groupKey, 0, @body)",
            new { id, g = NotificationIdentity.GroupId("b25-critical", groupKey), groupKey, body });
        return id;
    }

    [Fact]
    public async Task An_acknowledgement_after_a_journaled_but_unapplied_resolve_finds_the_incident_resolved()
    {
        await _processor.ProcessAsync(await Journal("g1", Firing("a1")), CancellationToken.None);
        await using (var connection = await _database.OpenAsync())
            Assert.Equal("open", await connection.QuerySingleAsync<string>("SELECT state FROM incidents"));
        var resolve = await Journal("g1", Resolved("a1")); // accepted, not yet applied (the bus is slow)
        string incidentId;
        await using (var connection = await _database.OpenAsync())
            incidentId = await connection.QuerySingleAsync<string>("SELECT id FROM incidents");

        var answer = await _actions.RunAsync(new ActionRequest(incidentId, IncidentActions.Acknowledge, "U0ALICE", "slack", "k1"), CancellationToken.None);

        Assert.Equal(ActionResults.AlreadyResolved, answer.Result);
        Assert.Equal(ProcessOutcome.AlreadyProcessed, await _processor.ProcessAsync(resolve, CancellationToken.None));
    }

    [Fact]
    public async Task Concurrent_acknowledgements_from_several_stores_give_one()
    {
        await _processor.ProcessAsync(await Journal("g1", Firing("a1")), CancellationToken.None);
        string incidentId;
        await using (var connection = await _database.OpenAsync())
            incidentId = await connection.QuerySingleAsync<string>("SELECT id FROM incidents");

        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
            _actions.RunAsync(new ActionRequest(incidentId, IncidentActions.Acknowledge, $"U0USER{i}", "slack", $"k{i}"), CancellationToken.None)));

        Assert.Single(answers, a => a.Result == ActionResults.Acknowledged);
        Assert.Equal(7, answers.Count(a => a.Result == ActionResults.AlreadyAcknowledged));
        await using var read = await _database.OpenAsync();
        Assert.Equal(1, await read.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM deliveries WHERE kind = 'note'"));
    }
}

/// <summary>Replicas sharing PostgreSQL: acknowledgements arriving at several at once give one.</summary>
public sealed class ActionReplicaTests
{
    [Fact]
    public async Task Replicas_acknowledging_at_the_same_moment_record_one_acknowledgement()
    {
        await using var store = await TestStores.CreatePostgresAsync();
        await using (var connection = await store.OpenAsync())
            await connection.ExecuteAsync(
                """
                INSERT INTO incidents (id, group_id, receiver, group_key, state, revision, opened_at, updated_at, group_labels, common_labels, common_annotations, external_url)
                VALUES ('inc', 'g', 'r', 'k', 'open', 1, 0, 0, '{}', '{}', '{}', '')
                """);
        var replicas = Enumerable.Range(0, 6).Select(i => store.Replica($"r{i}")).ToList();

        var results = await Task.WhenAll(replicas.Select((r, i) => new IncidentActionStore(r.Provider).RecordAsync(
            new NewAction("inc", $"k{i}", "acknowledge", $"U{i}", "slack", 1),
            subject => subject.Acknowledged
                ? new ActionDecision(ActionResults.AlreadyAcknowledged)
                : new ActionDecision(ActionResults.Acknowledged, Change: HandlingChangeKind.Acknowledge), CancellationToken.None)));

        Assert.Single(results, r => r!.Value.Row.Result == ActionResults.Acknowledged);
        await using var read = await store.OpenAsync();
        var winner = results.Single(r => r!.Value.Row.Result == ActionResults.Acknowledged)!.Value.Row.Actor;
        Assert.Equal(winner, await read.QuerySingleAsync<string>("SELECT acknowledged_by FROM incidents WHERE id = 'inc'"));
        foreach (var r in replicas) await r.DisposeAsync();
    }
}
