using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using B25.Alerting.Delivery;
using B25.Alerting.Storage;
using B25.Alerting.Storage.Postgres;
using B25.Alerting.Tests.Support;
using Dapper;
using Microsoft.Extensions.Time.Testing;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.Replicas;

/// <summary>Several replicas on one PostgreSQL database: what one process guaranteed with in-process locks must hold across processes.</summary>
public sealed class ReplicaTests
{
    [Fact]
    public async Task Replicas_migrating_at_once_all_succeed_on_one_schema()
    {
        await using var first = await TestStores.CreatePostgresAsync(migrate: false);
        var replicas = Enumerable.Range(0, 4).Select(i => first.Replica($"r{i}")).ToList();

        await Task.WhenAll(replicas.Select(r => r.Provider.MigrateAsync()));

        await using var connection = await first.OpenAsync();
        Assert.Equal(PostgresStorage.SchemaVersion, await connection.ExecuteScalarAsync<long>("SELECT MAX(version) FROM b25_schema"));
        Assert.Equal(PostgresStorage.SchemaVersion, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM b25_schema"));
        foreach (var r in replicas) await r.DisposeAsync();
    }

    [Fact]
    public async Task A_replica_starting_on_a_current_schema_does_not_wait_for_the_migration_lock()
    {
        await using var store = await TestStores.CreatePostgresAsync();
        // Another replica holds the lock: migrating, or cut off from the database while its session keeps the lock.
        await using var holder = await store.OpenAsync();
        await holder.ExecuteAsync("SELECT pg_advisory_lock(@key)", new { key = StorageKeys.Hash("b25-alerting:migrate") });
        await using var starting = store.Replica("starting");

        await starting.Provider.MigrateAsync().WaitAsync(TimeSpan.FromSeconds(20));

        await using var connection = await store.OpenAsync();
        Assert.Equal(PostgresStorage.SchemaVersion, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM b25_schema"));
    }

    [Fact]
    public async Task The_emergency_stop_cap_holds_for_replicas_asking_at_the_same_moment()
    {
        await using var store = await TestStores.CreatePostgresAsync();
        var replicas = Enumerable.Range(0, 6).Select(i => store.Replica($"r{i}")).ToList();
        await using (var connection = await store.OpenAsync())
            await connection.ExecuteAsync(
                """
                INSERT INTO incidents (id, group_id, receiver, group_key, state, revision, opened_at, updated_at, group_labels, common_labels, common_annotations, external_url)
                VALUES ('inc', 'g', 'r', 'k', 'open', 1, 0, 0, '{}', '{}', '{}', '')
                """);
        var now = T0.ToUnixTimeMilliseconds();

        // Another replica is deciding right now: it holds the cap (as BeginAsync holds it between count and insert).
        await using var holder = (Npgsql.NpgsqlConnection)await store.OpenAsync();
        await using var holding = await holder.BeginTransactionAsync();
        await holder.ExecuteAsync("SELECT pg_advisory_xact_lock(@key)", new { key = StorageKeys.Hash("emergency-stop-cap") }, holding);

        // Six commands for six alerts, each from a different replica, with a cap of 2 per window.
        var asking = Task.WhenAll(replicas.Select((r, i) => r.Stops.BeginAsync(
            new StopRequest($"cmd-{i}", "inc", "Stop", $"fp{i}", "2026-11-25T12:00:00Z", "{}", now), now, 600_000, 2, false,
            (_, _) => null, CancellationToken.None)));
        await Eventually.Stays(() => !asking.IsCompleted, "nobody counts while another replica holds the cap", 1_000);
        await holding.RollbackAsync();
        var starts = await asking;

        Assert.Equal(2, starts.Count(s => s.Status == "requesting"));
        Assert.Equal(4, starts.Count(s => s.Status == "suppressed"));
        foreach (var r in replicas) await r.DisposeAsync();
    }

    [Fact]
    public async Task A_target_belongs_to_one_replica_until_its_lease_expires()
    {
        var time = new FakeTimeProvider(T0);
        await using var a = await TestStores.CreatePostgresAsync(time, replica: "a");
        await using var b = a.Replica("b", time);

        Assert.True(await a.Outbox.ClaimAsync("slack", "#ops", CancellationToken.None));
        Assert.False(await b.Outbox.ClaimAsync("slack", "#ops", CancellationToken.None));
        Assert.True(await b.Outbox.ClaimAsync("slack", "#other", CancellationToken.None));
        time.Advance(a.Options.ClaimLease - TimeSpan.FromSeconds(1));
        Assert.True(await a.Outbox.ClaimAsync("slack", "#ops", CancellationToken.None)); // renewed
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.False(await b.Outbox.ClaimAsync("slack", "#ops", CancellationToken.None));

        // a dies: nobody renews; after the lease b takes over, and a's late mark is refused.
        time.Advance(a.Options.ClaimLease + TimeSpan.FromSeconds(1));
        Assert.True(await b.Outbox.ClaimAsync("slack", "#ops", CancellationToken.None));
        await Assert.ThrowsAsync<ClaimLostException>(() =>
            a.Outbox.MarkSendingAsync("slack", "#ops", [1], time.GetUtcNow().ToUnixTimeMilliseconds(), CancellationToken.None));
    }

    [Fact]
    public async Task A_send_mark_refused_for_want_of_the_claim_marks_nothing()
    {
        // The mark and the claim go to the database together: when the claim is refused, the mark must not stay.
        var time = new FakeTimeProvider(T0);
        await using var a = await TestStores.CreatePostgresAsync(time, replica: "a");
        await using var b = a.Replica("b", time);
        var id = await SeedDeliveryAsync(a, "post", 1);
        Assert.True(await b.Outbox.ClaimAsync("slack", "#ops", CancellationToken.None));

        await Assert.ThrowsAsync<ClaimLostException>(() =>
            a.Outbox.MarkSendingAsync("slack", "#ops", [id], time.GetUtcNow().ToUnixTimeMilliseconds(), CancellationToken.None));

        await using var check = await a.OpenAsync();
        Assert.Null(await check.ExecuteScalarAsync<long?>("SELECT sending_since FROM deliveries WHERE id = @id", new { id }));
        // The holder's own mark goes through.
        await b.Outbox.MarkSendingAsync("slack", "#ops", [id], time.GetUtcNow().ToUnixTimeMilliseconds(), CancellationToken.None);
        Assert.NotNull(await check.ExecuteScalarAsync<long?>("SELECT sending_since FROM deliveries WHERE id = @id", new { id }));
    }

    [Fact]
    public async Task Sessions_plan_each_call_and_keep_the_connection_strings_own_options()
    {
        // A plan cached for every value, made while a table was nearly empty, must not stay in use once it is large.
        await using var store = await TestStores.CreatePostgresAsync();
        await using (var connection = await store.OpenAsync())
            Assert.Equal("force_custom_plan", await connection.ExecuteScalarAsync<string>("SHOW plan_cache_mode"));
        await using (var connection = await store.Provider.OpenAsync(lockWait: TimeSpan.FromSeconds(3)))
        {
            Assert.Equal("force_custom_plan", await connection.ExecuteScalarAsync<string>("SHOW plan_cache_mode"));
            Assert.Equal("3s", await connection.ExecuteScalarAsync<string>("SHOW lock_timeout"));
        }

        // Settings given in the connection string win, and lock-wait sessions keep them.
        var given = new Npgsql.NpgsqlConnectionStringBuilder(store.Options.ConnectionString)
        {
            Options = "-c plan_cache_mode=force_generic_plan", MaxAutoPrepare = 0,
        }.ConnectionString;
        await using var provider = new PostgresStorage(Microsoft.Extensions.Options.Options.Create(
            new StorageOptions { Provider = StorageProviderKind.Postgres, ConnectionString = given }));
        await using (var connection = await provider.OpenAsync())
            Assert.Equal("force_generic_plan", await connection.ExecuteScalarAsync<string>("SHOW plan_cache_mode"));
        await using (var connection = await provider.OpenAsync(lockWait: TimeSpan.FromSeconds(3)))
        {
            Assert.Equal("force_generic_plan", await connection.ExecuteScalarAsync<string>("SHOW plan_cache_mode"));
            Assert.Equal("3s", await connection.ExecuteScalarAsync<string>("SHOW lock_timeout"));
        }
    }

    [Fact]
    public async Task A_send_mark_that_took_half_the_lease_to_commit_is_not_followed_by_a_send()
    {
        var time = new FakeTimeProvider(T0);
        await using var a = await TestStores.CreatePostgresAsync(time, replica: "a");
        var step = a.Options.ClaimLease / 3; // each read of the clock: as if every round trip took a third of the lease
        await using var slow = a.Replica("a", new SteppingClock(time, step));
        var id = await SeedDeliveryAsync(a, "post", 1);

        // On time: marked, and the caller may send.
        await a.Outbox.MarkSendingAsync("slack", "#ops", [id], time.GetUtcNow().ToUnixTimeMilliseconds(), CancellationToken.None);
        // Slow: the mark commits, but the caller is told not to send; whoever sends next finds the mark and reconciles first.
        await Assert.ThrowsAsync<ClaimLostException>(() =>
            slow.Outbox.MarkSendingAsync("slack", "#ops", [id], time.GetUtcNow().ToUnixTimeMilliseconds(), CancellationToken.None));
        await using var check = await a.OpenAsync();
        Assert.NotNull(await check.ExecuteScalarAsync<long?>("SELECT sending_since FROM deliveries WHERE id = @id", new { id }));
    }

    [Fact]
    public async Task A_claim_that_passed_to_another_replica_and_back_is_not_renewed_at_its_old_epoch()
    {
        var time = new FakeTimeProvider(T0);
        await using var a = await TestStores.CreatePostgresAsync(time, replica: "a");
        await using var b = a.Replica("b", time);

        var first = await a.Outbox.ClaimTargetAsync("slack", "#ops", null, CancellationToken.None);
        Assert.NotNull(first);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(first.Epoch, (await a.Outbox.ClaimTargetAsync("slack", "#ops", first.Epoch, CancellationToken.None))?.Epoch); // renewed, no break

        // a is cut off: its lease runs out, b holds the target for a whole lease and dies too.
        time.Advance(a.Options.ClaimLease + TimeSpan.FromSeconds(1));
        var taken = await b.Outbox.ClaimTargetAsync("slack", "#ops", null, CancellationToken.None);
        Assert.NotNull(taken);
        Assert.NotEqual(first.Epoch, taken.Epoch);
        time.Advance(a.Options.ClaimLease + TimeSpan.FromSeconds(1));

        // Back, a must not carry on with what it decided under its old claim (b may have sent it) ...
        Assert.Null(await a.Outbox.ClaimTargetAsync("slack", "#ops", first.Epoch, CancellationToken.None));
        await Assert.ThrowsAsync<ClaimLostException>(() => a.Outbox.MarkSendingAsync("slack", "#ops", [1], time.GetUtcNow().ToUnixTimeMilliseconds(),
            CancellationToken.None, first.Epoch));
        // ... but may take the target afresh, reading the outbox again.
        var again = await a.Outbox.ClaimTargetAsync("slack", "#ops", null, CancellationToken.None);
        Assert.NotNull(again);
        Assert.NotEqual(taken.Epoch, again.Epoch);
    }

    [Fact]
    public async Task A_late_retry_record_of_a_replica_that_lost_the_target_leaves_the_new_owners_send_mark_alone()
    {
        var time = new FakeTimeProvider(T0);
        await using var a = await TestStores.CreatePostgresAsync(time, replica: "a");
        await using var b = a.Replica("b", time);
        await SeedDeliveryAsync(a, "reply", 2);
        var batch = await a.Outbox.DueAsync("slack", "#ops", time.GetUtcNow().ToUnixTimeMilliseconds(), 10, CancellationToken.None);
        var delivery = Assert.Single(batch);

        // a marks the reply and is told 429 (not kept): a retry with nothing in flight. It cannot record that (cut off) ...
        var aClaim = (await a.Outbox.ClaimTargetAsync("slack", "#ops", null, CancellationToken.None))!;
        await a.Outbox.MarkSendingAsync("slack", "#ops", [delivery.Id], time.GetUtcNow().ToUnixTimeMilliseconds(), CancellationToken.None, aClaim.Epoch);
        // ... while b takes the channel over and posts the reply, with an unknown outcome: b's next attempt must look first.
        time.Advance(a.Options.ClaimLease + TimeSpan.FromSeconds(1));
        var bClaim = (await b.Outbox.ClaimTargetAsync("slack", "#ops", null, CancellationToken.None))!;
        await b.Outbox.MarkSendingAsync("slack", "#ops", [delivery.Id], time.GetUtcNow().ToUnixTimeMilliseconds(), CancellationToken.None, bClaim.Epoch);
        var retryAt = (time.GetUtcNow() + TimeSpan.FromSeconds(2)).ToUnixTimeMilliseconds();
        await b.Outbox.RecordAsync(new DeliveryRecord("inc", "slack", "#ops", batch,
            [new DeliveryOutcome(delivery.Id, DeliveryOutcomeKind.Retry, "timeout", OutcomeUnknown: true)], null, retryAt,
            time.GetUtcNow().ToUnixTimeMilliseconds(), bClaim.Epoch), CancellationToken.None);

        // a's record arrives late: it must not clear the mark b's reconciliation depends on, nor reschedule b's retry.
        await a.Outbox.RecordAsync(new DeliveryRecord("inc", "slack", "#ops", batch,
            [new DeliveryOutcome(delivery.Id, DeliveryOutcomeKind.Retry, "HTTP 429")], null, retryAt + 60_000,
            time.GetUtcNow().ToUnixTimeMilliseconds(), aClaim.Epoch), CancellationToken.None);
        await using (var check = await a.OpenAsync())
        {
            var row = await check.QuerySingleAsync<(long? SendingSince, long NextAttemptAt)>(
                "SELECT sending_since, next_attempt_at FROM deliveries WHERE id = @id", new { id = delivery.Id });
            Assert.NotNull(row.SendingSince);
            Assert.Equal(retryAt, row.NextAttemptAt);
        }

        // The owner's own definite failure does clear it (the fence above is what kept it).
        await b.Outbox.RecordAsync(new DeliveryRecord("inc", "slack", "#ops", batch,
            [new DeliveryOutcome(delivery.Id, DeliveryOutcomeKind.Retry, "HTTP 429")], null, retryAt + 1_000,
            time.GetUtcNow().ToUnixTimeMilliseconds(), bClaim.Epoch), CancellationToken.None);
        await using (var check = await a.OpenAsync())
            Assert.Null(await check.ExecuteScalarAsync<long?>("SELECT sending_since FROM deliveries WHERE id = @id", new { id = delivery.Id }));
    }

    /// <summary>An open incident 'inc' with one pending Slack delivery to #ops; returns the delivery's id.</summary>
    private static async Task<long> SeedDeliveryAsync(TestStores store, string kind, int revision)
    {
        await using var connection = await store.OpenAsync();
        await connection.ExecuteAsync(
            """
            INSERT INTO incidents (id, group_id, receiver, group_key, state, revision, opened_at, updated_at, group_labels, common_labels, common_annotations, external_url)
            VALUES ('inc', 'g', 'r', 'k', 'open', 1, 0, 0, '{}', '{}', '{}', '')
            """);
        return await connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO deliveries (incident_id, channel, target, kind, revision, payload, status, next_attempt_at, accepted_at, created_at)
            VALUES ('inc', 'slack', '#ops', @kind, @revision, '{}', 'pending', 0, 0, 0) RETURNING id
            """, new { kind, revision });
    }

    /// <summary>A clock that moves on by <paramref name="step"/> every time it is read.</summary>
    private sealed class SteppingClock(FakeTimeProvider inner, TimeSpan step) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow()
        {
            inner.Advance(step);
            return inner.GetUtcNow();
        }
    }

    [Fact]
    public async Task A_retry_after_holds_the_target_for_the_replica_that_takes_it_over()
    {
        var time = new FakeTimeProvider(T0);
        await using var a = await TestStores.CreatePostgresAsync(time, replica: "a");
        await using var b = a.Replica("b", time);
        Assert.True(await a.Outbox.ClaimAsync("slack", "#ops", CancellationToken.None));

        // Slack told a: not before 60 s from now. Then a dies.
        await a.Outbox.HoldAsync("slack", "#ops", (time.GetUtcNow() + TimeSpan.FromSeconds(60)).ToUnixTimeMilliseconds(), CancellationToken.None);
        Assert.False(await a.Outbox.ClaimAsync("slack", "#ops", CancellationToken.None));
        time.Advance(a.Options.ClaimLease + TimeSpan.FromSeconds(1));
        Assert.False(await b.Outbox.ClaimAsync("slack", "#ops", CancellationToken.None)); // taken over, but held
        time.Advance(TimeSpan.FromSeconds(60) - a.Options.ClaimLease);
        Assert.True(await b.Outbox.ClaimAsync("slack", "#ops", CancellationToken.None));
    }

    [Fact]
    public async Task Copies_of_a_storm_sent_to_different_replicas_page_once_per_group_and_close_every_incident()
    {
        using var slack = new SlackStandIn();
        await using var database = await TestStores.CreatePostgresAsync(migrate: false);
        var settings = new Dictionary<string, string?>(database.Settings) { ["Storage:ClaimLease"] = "00:00:03", ["Slack:RequestTimeout"] = "00:00:02" };
        using var one = new AlertingFactory(slack, new(settings) { ["Storage:ReplicaName"] = "one" });
        using var two = new AlertingFactory(slack, new(settings) { ["Storage:ReplicaName"] = "two" });
        using var c1 = one.Authorized();
        using var c2 = two.Authorized();
        const int groups = 30;

        // Alertmanager HA: every notification arrives as three copies, at both replicas, at once.
        async Task SendEverywhere(string body)
        {
            var answers = await Task.WhenAll(new[] { c1, c2, c1 }.Select(c => c.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(body))));
            Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.StatusCode));
        }

        await Task.WhenAll(Enumerable.Range(0, groups).Select(g => SendEverywhere(Body($"storm-{g}", Firing($"a{g}", severity: "warning")))));
        await Eventually.True(() => slack.Posts.Count >= groups, "a post per group", 60_000);
        await Task.WhenAll(Enumerable.Range(0, groups).Select(g => SendEverywhere(Body($"storm-{g}", Resolved($"a{g}", severity: "warning")))));

        await Eventually.True(async () => (await c2.GetFromJsonAsync<JsonArray>("/api/incidents?state=closed&limit=1000"))!.Count == groups,
            "every incident closed", 60_000);
        await Eventually.True(async () =>
        {
            var closed = (await c1.GetFromJsonAsync<JsonArray>("/api/incidents?state=closed&limit=1000"))!;
            return closed.All(i => i!["deliveries"]!.AsArray().All(d => d!["status"]!.GetValue<string>() is "sent" or "merged"));
        }, "every delivery done", 60_000);
        await Eventually.Stays(() => slack.Posts.Count == groups, "one top-level post per group, never two", 2_000);
    }
}

/// <summary>A replica's wake-up names the targets that got deliveries, so the others start those workers without looking at the whole outbox.</summary>
public sealed class DeliveryWakeTests
{
    [Fact]
    public async Task A_commit_wakes_the_other_replica_with_the_targets_it_queued()
    {
        await using var a = await TestStores.CreatePostgresAsync(replica: "a");
        await using var b = a.Replica("b");
        var heard = new System.Collections.Concurrent.ConcurrentQueue<IReadOnlyCollection<(string Channel, string Target)>?>();
        using var stop = new CancellationTokenSource();
        var listening = b.Provider.ListenForDeliveriesAsync(heard.Enqueue, stop.Token);
        await Eventually.True(() => heard.Count > 0, "the listener wakes once when it starts (for whatever came before)");
        Assert.True(heard.TryDequeue(out var first) && first is null);

        await using (var connection = await a.OpenAsync())
        await using (var write = await a.Provider.BeginWriteAsync(connection))
        {
            await a.Provider.WakeDeliveriesAsync(write, [("slack", "#ops"), ("pagerduty", "key-1")]);
            await write.CommitAsync();
        }
        await Eventually.True(() => !heard.IsEmpty, "the other replica hears the commit");
        Assert.True(heard.TryDequeue(out var targets));
        Assert.Equal([("slack", "#ops"), ("pagerduty", "key-1")], targets!.ToArray());

        // Rolled back: nobody is woken.
        await using (var connection = await a.OpenAsync())
        await using (var write = await a.Provider.BeginWriteAsync(connection))
            await a.Provider.WakeDeliveriesAsync(write, [("slack", "#rolled-back")]);
        // Unknown targets: the listener is told to look at every target.
        await using (var connection = await a.OpenAsync())
        await using (var write = await a.Provider.BeginWriteAsync(connection))
        {
            await a.Provider.WakeDeliveriesAsync(write, null);
            await write.CommitAsync();
        }
        await Eventually.True(() => !heard.IsEmpty, "the other replica hears the second commit");
        Assert.True(heard.TryDequeue(out var every));
        Assert.Null(every);
        Assert.True(heard.IsEmpty, "the rolled-back wake-up never arrived");

        await stop.CancelAsync();
        await listening.ContinueWith(_ => { });
    }

    [Theory]
    [InlineData(2)]
    [InlineData(400)]
    public void A_payload_too_long_or_not_ours_means_every_target(int targets)
    {
        var many = Enumerable.Range(0, targets).Select(i => ("slack", $"#channel-{i}")).ToList();
        var payload = WakePayload.Write(many, 4000);
        if (targets == 2) Assert.Equal(many, WakePayload.Read(payload)!.ToList());
        else Assert.Equal("", payload);
        Assert.Null(WakePayload.Read(""));
        Assert.Null(WakePayload.Read("garbage"));
        Assert.Equal("", WakePayload.Write([("slack", "#a\tb")], 4000));
    }
}
