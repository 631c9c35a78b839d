using System.Text.Json.Nodes;
using B25.Alerting.Delivery;
using B25.Alerting.Delivery.PagerDuty;
using B25.Alerting.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Tests.PagerDuty;

/// <summary>How the notifier folds the pending deliveries of one incident into PagerDuty events.</summary>
public sealed class PagerDutyNotifierTests : IAsyncLifetime
{
    private readonly FakeEventsApi _api = new();
    private TestStores _database = null!;

    public async Task InitializeAsync() => _database = await TestStores.CreateAsync();

    public async Task DisposeAsync() => await _database.DisposeAsync();

    private PagerDutyNotifier Notifier(PagerDutyOptions? options = null) => new(_api,
        Options.Create(options ?? new PagerDutyOptions { RoutingKey = "DEFAULTKEY", RoutingKeys = { ["ops"] = "OPSKEY" } }),
        _database.ReadModel, TimeProvider.System, NullLogger<PagerDutyNotifier>.Instance);

    private static PendingDelivery Pending(long id, string kind, long revision) =>
        new(id, "inc1", "pagerduty", "default", kind, revision, "", "{}", 0, 0);

    [Fact]
    public async Task Pending_triggers_merge_into_one_then_the_resolve_follows()
    {
        var result = await Notifier().DeliverAsync(PagerDutyEventsTests.Incident(2, state: "closed"), "default",
            [Pending(1, "trigger", 1), Pending(2, "trigger", 2), Pending(3, "resolve", 3)], null, CancellationToken.None);

        Assert.Equal(["trigger", "resolve"], _api.Events.Select(e => e["event_action"]!.GetValue<string>()));
        Assert.All(_api.Events, e => Assert.Equal("DEFAULTKEY", e["routing_key"]!.GetValue<string>()));
        Assert.Equal(_api.Events[0]["dedup_key"]!.GetValue<string>(), _api.Events[1]["dedup_key"]!.GetValue<string>());
        var outcomes = result.Outcomes.ToDictionary(o => o.DeliveryId, o => o.Kind);
        Assert.Equal(DeliveryOutcomeKind.Merged, outcomes[1]);
        Assert.Equal(DeliveryOutcomeKind.Sent, outcomes[2]);
        Assert.Equal(DeliveryOutcomeKind.Sent, outcomes[3]);
        Assert.Equal(_api.Events[0]["dedup_key"]!.GetValue<string>(), result.NewMessage!.MessageId);
    }

    [Fact]
    public async Task The_trigger_is_recorded_before_its_resolve_is_sent()
    {
        // A crash after the resolve and before the batch's end must not send the trigger again behind it.
        var recorder = new CountingRecorder(_api);
        await Notifier().DeliverAsync(PagerDutyEventsTests.Incident(2, state: "closed"), "default",
            [Pending(1, "trigger", 1), Pending(2, "resolve", 2)], null, recorder, CancellationToken.None);

        var (eventsSent, recorded) = Assert.Single(recorder.Records);
        Assert.Equal(1, eventsSent);
        Assert.Contains(recorded, o => o.DeliveryId == 1 && o.Kind == DeliveryOutcomeKind.Sent);
        Assert.Equal(2, _api.Events.Count);
    }

    private sealed class CountingRecorder(FakeEventsApi api) : IDeliveryRecorder
    {
        public List<(int EventsSent, IReadOnlyList<DeliveryOutcome> Outcomes)> Records { get; } = [];

        public Task MarkSendingAsync(IReadOnlyCollection<long> deliveryIds, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task RecordAsync(IReadOnlyList<DeliveryOutcome> outcomes, DeliveredMessage? newMessage, CancellationToken cancellationToken)
        {
            Records.Add((api.Events.Count, outcomes));
            return Task.CompletedTask;
        }
    }

    [Fact]
    public async Task Acknowledge_is_sent_and_folded_into_a_pending_resolve()
    {
        var incident = PagerDutyEventsTests.Incident(1);
        var message = new DeliveredMessage("default", "b25-x");
        var ack = await Notifier().DeliverAsync(incident, "default", [Pending(1, "acknowledge", 2)], message, CancellationToken.None);
        Assert.Equal("acknowledge", Assert.Single(_api.Events)["event_action"]!.GetValue<string>());
        Assert.Equal(DeliveryOutcomeKind.Sent, Assert.Single(ack.Outcomes).Kind);
        Assert.Null(ack.NewMessage);

        _api.Events.Clear();
        var both = await Notifier().DeliverAsync(incident, "default", [Pending(2, "acknowledge", 3), Pending(3, "resolve", 4)], message, CancellationToken.None);
        Assert.Equal("resolve", Assert.Single(_api.Events)["event_action"]!.GetValue<string>());
        Assert.Equal(DeliveryOutcomeKind.Merged, both.Outcomes.Single(o => o.DeliveryId == 2).Kind);
        Assert.Equal(DeliveryOutcomeKind.Sent, both.Outcomes.Single(o => o.DeliveryId == 3).Kind);
    }

    [Fact]
    public async Task A_refused_trigger_fails_the_resolve_behind_it_and_a_transient_one_retries_after_the_delay()
    {
        _api.Answer = new PagerDutyCallResult(PagerDutyCallStatus.Permanent, "HTTP 400: invalid event");
        var refused = await Notifier().DeliverAsync(PagerDutyEventsTests.Incident(1), "default", [Pending(1, "trigger", 1), Pending(2, "resolve", 2)], null, CancellationToken.None);
        Assert.All(refused.Outcomes, o => Assert.Equal(DeliveryOutcomeKind.Failed, o.Kind));
        Assert.Single(_api.Events);

        _api.Answer = new PagerDutyCallResult(PagerDutyCallStatus.Transient, "HTTP 503", RetryAfter: TimeSpan.FromSeconds(40));
        var later = await Notifier().DeliverAsync(PagerDutyEventsTests.Incident(1), "default", [Pending(3, "trigger", 1)], null, CancellationToken.None);
        var retry = Assert.Single(later.Outcomes);
        Assert.Equal(DeliveryOutcomeKind.Retry, retry.Kind);
        Assert.Equal(TimeSpan.FromSeconds(40), retry.RetryAfter);
    }

    [Fact]
    public async Task Events_of_an_older_incident_are_not_sent_once_a_later_incident_of_the_group_paged()
    {
        // Both incidents share the group's dedup_key: a late resolve of the old one would close the new PagerDuty alert.
        var old = PagerDutyEventsTests.Incident(1, state: "closed");
        await using (var connection = await _database.OpenAsync())
        {
            foreach (var (id, openedAt) in new[] { (old.Id, old.OpenedAt), ("inc2", old.OpenedAt.AddHours(1)) })
                await Dapper.SqlMapper.ExecuteAsync(connection,
                    """
                    INSERT INTO incidents (id, group_id, receiver, group_key, state, revision, opened_at, updated_at, group_labels, common_labels, common_annotations, external_url)
                    VALUES (@id, 'g', @Receiver, @GroupKey, 'closed', 1, @at, @at, '{}', '{}', '{}', '')
                    """, new { id, old.Receiver, old.GroupKey, at = openedAt.ToUnixTimeMilliseconds() });
            await Dapper.SqlMapper.ExecuteAsync(connection,
                "INSERT INTO delivery_messages (incident_id, channel, target, address, message_id, created_at) VALUES ('inc2', 'pagerduty', 'default', 'default', 'b25-x', 0)");
        }

        var result = await Notifier().DeliverAsync(old, "default", [Pending(1, "trigger", 1), Pending(2, "resolve", 2)], null, CancellationToken.None);

        Assert.Empty(_api.Events);
        Assert.All(result.Outcomes, o => Assert.Equal(DeliveryOutcomeKind.Merged, o.Kind));
        Assert.All(result.Outcomes, o => Assert.Contains("superseded", o.Error));
    }

    [Fact]
    public void Channel_is_off_without_any_key_and_checks_the_key_names_routes_use()
    {
        var off = Notifier(new PagerDutyOptions());
        Assert.NotNull(off.DisabledReason);

        var on = Notifier();
        Assert.Null(on.DisabledReason);
        Assert.Null(on.CheckTarget("default"));
        Assert.Null(on.CheckTarget("OPS"));
        Assert.Contains("PagerDuty:RoutingKeys:trading", on.CheckTarget("trading"));

        var onlyNamed = Notifier(new PagerDutyOptions { RoutingKeys = { ["ops"] = "OPSKEY" } });
        Assert.Null(onlyNamed.DisabledReason);
        Assert.Contains("PagerDuty:RoutingKey is empty", onlyNamed.CheckTarget("default"));
    }

    private sealed class FakeEventsApi : IPagerDutyEventsApi
    {
        public List<JsonNode> Events { get; } = [];

        public PagerDutyCallResult Answer { get; set; } = new(PagerDutyCallStatus.Ok);

        public Task<PagerDutyCallResult> SendAsync(string eventJson, CancellationToken cancellationToken)
        {
            Events.Add(JsonNode.Parse(eventJson)!);
            return Task.FromResult(Answer);
        }
    }
}
