using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Npgsql;

namespace B25.FaultSuite;

/// <summary>
/// The sizes of the replica scenarios of one scale. Each scenario has its own storm (alert groups, started spread over
/// this long): faults are injected until the cluster has accepted the storm, so the storm's length sets how many faults
/// fit. Kills and broker restarts are bounded by how long a replica (a node) takes to start again, so their storms are the
/// longest; the groups per second stay about the same (2/s), within Slack's budget of 12 channels at 1 message/s.
/// </summary>
internal sealed record ReplicaScale(
    int Replicas,
    (int Groups, TimeSpan Spread) KillStorm, (int Groups, TimeSpan Spread) BrokerStorm, (int Groups, TimeSpan Spread) PostgresRestartStorm,
    (int Groups, TimeSpan Spread) DropStorm, (int Groups, TimeSpan Spread) CutStorm, (int Groups, TimeSpan Spread) VendorStorm,
    (int Groups, TimeSpan Spread) VendorLongStorm, (int Groups, TimeSpan Spread) MixedStorm,
    (double Min, double Max) KillEvery,
    (double Min, double Max) BrokerStopEvery, (double Min, double Max) BrokerDown,
    (double Min, double Max) PostgresRestartEvery, (double Min, double Max) PostgresDown,
    (double Min, double Max) DropEvery, double DropShare,
    (double Min, double Max) CutEvery, (double Min, double Max) CutHold,
    (double Min, double Max) VendorHealthy, (double Min, double Max) VendorOutage, double VendorFaultShare,
    TimeSpan VendorLongFrom, TimeSpan VendorLongOutage, double VendorLongFaultShare, int VendorLongRetryAfter,
    TimeSpan Stall, TimeSpan MaxWait, TimeSpan StormOverrun)
{
    private static (int, TimeSpan) Storm(int groups, double seconds) => (groups, TimeSpan.FromSeconds(seconds));

    public static ReplicaScale Ci { get; } = new(
        Replicas: 3,
        KillStorm: Storm(24, 14), BrokerStorm: Storm(24, 14), PostgresRestartStorm: Storm(24, 14),
        DropStorm: Storm(24, 14), CutStorm: Storm(24, 14), VendorStorm: Storm(48, 23),
        VendorLongStorm: Storm(24, 20), MixedStorm: Storm(24, 14),
        KillEvery: (1, 3),
        BrokerStopEvery: (3, 5), BrokerDown: (2, 3),
        PostgresRestartEvery: (3, 5), PostgresDown: (1, 2),
        DropEvery: (1, 2), DropShare: 0.5,
        CutEvery: (2, 4), CutHold: (3, 7),
        VendorHealthy: (1, 3), VendorOutage: (3, 6), VendorFaultShare: 0.6,
        VendorLongFrom: TimeSpan.FromSeconds(2), VendorLongOutage: TimeSpan.FromSeconds(15), VendorLongFaultShare: 0.8, VendorLongRetryAfter: 10,
        Stall: TimeSpan.FromSeconds(75), MaxWait: TimeSpan.FromSeconds(100), StormOverrun: TimeSpan.FromSeconds(60));

    public static ReplicaScale Full { get; } = new(
        Replicas: 3,
        KillStorm: Storm(480, 240), BrokerStorm: Storm(360, 180), PostgresRestartStorm: Storm(360, 180),
        DropStorm: Storm(180, 90), CutStorm: Storm(360, 180), VendorStorm: Storm(360, 150),
        VendorLongStorm: Storm(240, 150), MixedStorm: Storm(360, 180),
        KillEvery: (1, 3),
        BrokerStopEvery: (2, 5), BrokerDown: (1, 4),
        PostgresRestartEvery: (2, 4), PostgresDown: (1, 3),
        DropEvery: (0.2, 0.6), DropShare: 0.3,
        CutEvery: (1, 3), CutHold: (2, 10),
        VendorHealthy: (3, 8), VendorOutage: (5, 15), VendorFaultShare: 0.6,
        VendorLongFrom: TimeSpan.FromSeconds(10), VendorLongOutage: TimeSpan.FromSeconds(120), VendorLongFaultShare: 0.8, VendorLongRetryAfter: 10,
        Stall: TimeSpan.FromSeconds(90), MaxWait: TimeSpan.FromSeconds(420), StormOverrun: TimeSpan.FromSeconds(180));
}

/// <summary>
/// What the known Slack window did: Slack kept a message, then the replica that posted it was killed (kill -9) before it
/// recorded it. The next sender (the restarted replica or the one that took the channel's claim over) either finds the
/// message in the channel history and adopts it, or posts it again.
/// </summary>
internal sealed class SlackWindow
{
    public int Posts, PostsAdopted, PostsAgain, PostsOrphaned;
    public int Replies, RepliesAdopted, RepliesAgain;
    public readonly List<double> GapsMs = [];

    public override string ToString()
    {
        if (Posts + Replies == 0) return "0";
        var parts = new List<string>();
        if (Posts > 0)
            parts.Add($"{Posts} post(s): {PostsAdopted} adopted, {PostsAgain} posted again" + (PostsOrphaned > 0 ? $", {PostsOrphaned} orphaned" : ""));
        if (Replies > 0) parts.Add($"{Replies} repl(ies): {RepliesAdopted} adopted, {RepliesAgain} posted again");
        var gaps = GapsMs.Order().ToList();
        parts.Add($"kill {gaps[0]:0}-{gaps[^1]:0} ms (median {gaps[gaps.Count / 2]:0}) after Slack kept it");
        return string.Join("; ", parts);
    }
}

/// <summary>
/// The replica scenarios: several service processes share a throwaway PostgreSQL 15 and RabbitMQ; every notification
/// goes as 3 Alertmanager copies to different replicas. Faults: kill -9 of replicas, RabbitMQ stop/start, PostgreSQL
/// restarts and dropped sessions, a replica cut off from PostgreSQL, Slack and PagerDuty outages.
/// </summary>
internal static class Cluster
{
    public static IEnumerable<Scenario> All(Scale scale)
    {
        var s = scale.Cluster;
        var slackLatency = new VendorFaults { MaxLatency = TimeSpan.FromMilliseconds(800) };
        yield return new("replicas-kill",
            $"{s.Replicas} replicas; kill -9 of a random ready replica every {s.KillEvery.Min:0.#}-{s.KillEvery.Max:0.#} s, started again (at least one left answering); Slack answers within 0-0.8 s (latency, not a fault), so kills land between Slack keeping a message and its replica recording it",
            x => x.Cluster.KillStorm, KillReplicas, Cluster: true, Slack: slackLatency);
        yield return new("replicas-rabbitmq",
            $"{s.Replicas} replicas; RabbitMQ stopped (alternately rabbitmqctl stop and kill -9 of the node) every {s.BrokerStopEvery.Min:0.#}-{s.BrokerStopEvery.Max:0.#} s, started again after {s.BrokerDown.Min:0.#}-{s.BrokerDown.Max:0.#} s",
            x => x.Cluster.BrokerStorm, BrokerRestarts, Cluster: true, InCi: false);
        yield return new("replicas-postgres-restart",
            $"{s.Replicas} replicas; PostgreSQL fast stop (SIGINT to the postmaster) every {s.PostgresRestartEvery.Min:0.#}-{s.PostgresRestartEvery.Max:0.#} s, started again after {s.PostgresDown.Min:0.#}-{s.PostgresDown.Max:0.#} s",
            x => x.Cluster.PostgresRestartStorm, PostgresRestarts, Cluster: true, InCi: false);
        yield return new("replicas-postgres-drop",
            $"{s.Replicas} replicas; every {s.DropEvery.Min:0.#}-{s.DropEvery.Max:0.#} s pg_terminate_backend of each service session with probability {s.DropShare:0.#}",
            x => x.Cluster.DropStorm, DropSessions, Cluster: true, InCi: false);
        yield return new("replicas-partition",
            $"{s.Replicas} replicas, each reaching PostgreSQL through its own TCP proxy; each replica is cut off every {s.CutEvery.Min:0.#}-{s.CutEvery.Max:0.#} s after its last cut healed, for {s.CutHold.Min:0.#}-{s.CutHold.Max:0.#} s (lease 5 s), alternately a blackhole (bytes held, delivered when it heals) and a reset (RST, new connections refused); at most {s.Replicas - 1} cut at once",
            x => x.Cluster.CutStorm, CutReplicas, Cluster: true, NeedsProxies: true, InCi: false);
        yield return new("replicas-vendors",
            $"{s.Replicas} replicas; Slack and PagerDuty outages of {s.VendorOutage.Min:0.#}-{s.VendorOutage.Max:0.#} s, {s.VendorHealthy.Min:0.#}-{s.VendorHealthy.Max:0.#} s apart: {s.VendorFaultShare:0%} of calls answered 429 (Retry-After: 1; PagerDuty half without), 5xx, slow (kept, answered after the timeout) or, on Slack, reset before/after keeping",
            x => x.Cluster.VendorStorm, VendorOutages, Cluster: true, InCi: false);
        yield return new("replicas-vendors-long",
            $"{s.Replicas} replicas; Slack and PagerDuty fail for {s.VendorLongOutage.TotalSeconds:0} s without a break, from {s.VendorLongFrom.TotalSeconds:0} s into the storm: {s.VendorLongFaultShare:0%} of calls answered 429 (Retry-After: {s.VendorLongRetryAfter}, longer than the service waits in place; PagerDuty half without), 5xx or slow (kept, answered after the timeout)",
            x => x.Cluster.VendorLongStorm, VendorLongOutage, Cluster: true, InCi: false);
        yield return new("replicas-mixed",
            $"{s.Replicas} replicas through TCP proxies; all of the above at once, each at half its rate: replica kill -9, RabbitMQ stop/start, PostgreSQL restarts, dropped sessions, replicas cut off, Slack and PagerDuty outages",
            x => x.Cluster.MixedStorm, Mixed, Cluster: true, NeedsProxies: true);
    }

    /// <summary>Replica <paramref name="name"/>'s settings: the suite's service settings on PostgreSQL and RabbitMQ, a short claim lease, its own Slack token (who posted what).</summary>
    public static Dictionary<string, string> Settings(string name, string connectionString, SlackStandIn slack, PagerDutyStandIn pagerDuty, RabbitNode rabbit)
    {
        var env = Scenarios.ServiceSettings("unused", slack, pagerDuty, rabbit);
        env["Storage__Provider"] = "Postgres";
        env["Storage__ConnectionString"] = connectionString;
        env["Storage__ReplicaName"] = name;
        env["Storage__ClaimLease"] = "00:00:05";
        env["Slack__BotToken"] = $"xoxb-fault-suite-{name}";
        // The PagerDuty stand-in ignores the query string except to tell which replica sent an event.
        env["PagerDuty__EventsUrl"] = $"{pagerDuty.EventsUrl}?replica={name}";
        return env;
    }

    public static async Task<ScenarioResult> RunAsync(Scenario scenario, Scale scale, string dir, Stopwatch clock, Action<string> say)
    {
        var s = scale.Cluster;
        var result = new ScenarioResult { Name = scenario.Name, Replicas = s.Replicas };
        var watch = Stopwatch.StartNew();
        void Progress(string line) => say($"[{scenario.Name}] {line}");
        if (!RabbitNode.Installed || !PostgresServer.Installed)
        {
            result.Error = "rabbitmq-server and postgresql 15 must be installed (apt-get install -y --no-install-recommends rabbitmq-server postgresql)";
            Progress(result.Error);
            return result;
        }
        Directory.CreateDirectory(dir);
        Progress(scenario.Description);
        var faults = new FaultCounter();
        SlackStandIn? slack = null;
        PagerDutyStandIn? pagerDuty = null;
        RabbitNode? rabbit = null;
        PostgresServer? postgres = null;
        var proxies = new List<TcpProxy>();
        var replicas = new List<ServiceHost>();
        try
        {
            slack = Scenarios.Slack(clock, faults);
            pagerDuty = new PagerDutyStandIn { Clock = clock, Counter = faults };
            rabbit = new RabbitNode(dir);
            Cleanup.Add(rabbit.Dispose);
            postgres = new PostgresServer(dir);
            Cleanup.Add(postgres.Dispose);
            Progress("starting RabbitMQ and PostgreSQL");
            await Task.WhenAll(rabbit.StartAsync(), postgres.InitAsync());
            for (var i = 1; i <= s.Replicas; i++)
            {
                var port = postgres.Port;
                if (scenario.NeedsProxies)
                {
                    var proxy = new TcpProxy(postgres.Port);
                    proxies.Add(proxy);
                    port = proxy.Port;
                }
                var replica = new ServiceHost(dir, Settings($"r{i}", PostgresServer.ConnectionString(port), slack, pagerDuty, rabbit), $"r{i}");
                replicas.Add(replica);
                Cleanup.Add(replica.Dispose);
            }
            // All at once: migrations and the recovery sweep must be safe with N replicas starting together.
            Progress($"starting {replicas.Count} replicas at once (PostgreSQL, RabbitMq{(scenario.NeedsProxies ? ", each through a TCP proxy" : "")})");
            await Task.WhenAll(replicas.Select(r => r.StartAsync(budget: TimeSpan.FromSeconds(120))));

            var (count, spread) = scenario.Size(scale);
            var groups = Storm.Build(Guid.NewGuid().ToString("N")[..6], count);
            result.Groups = groups.Count;
            var stats = new StormStats();
            var context = new ScenarioContext
            {
                WorkDir = dir, Service = replicas[0], Replicas = replicas, Slack = slack, PagerDuty = pagerDuty, Faults = faults, Scale = scale,
                Progress = Progress, Result = result, Stats = stats, Rabbit = rabbit, Postgres = postgres, Proxies = proxies,
            };
            slack.Faults = scenario.Slack ?? VendorFaults.None;
            pagerDuty.Faults = scenario.PagerDuty ?? VendorFaults.None;

            using var stormDone = new CancellationTokenSource();
            using var abort = new CancellationTokenSource();
            Progress($"storm: {groups.Count} groups, {groups.Sum(g => g.Bodies.Count)} notifications x {Storm.Copies} copies (one per replica) over {spread.TotalSeconds:0} s");
            // The cluster must accept every notification within the storm's length plus the overrun, under faults.
            abort.CancelAfter(spread + s.StormOverrun);
            var accepted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var storm = Storm.RunAsync(groups, replicas.Select(r => r.BaseUrl).ToList(), spread, scale.MaxStepPause, stats, accepted, abort.Token);
            var injector = scenario.Inject(context, stormDone.Token);
            var progress = Task.Run(async () =>
            {
                while (!storm.IsCompleted)
                {
                    await Task.WhenAny(storm, Task.Delay(TimeSpan.FromSeconds(10)));
                    if (!storm.IsCompleted)
                        Progress($"storm: {stats.Accepted}/{stats.Notifications} notifications accepted, {stats.Answered2xx}/{stats.Notifications * Storm.Copies} copies answered 2xx, {stats.Retried} retried, {faults.Total} faults so far");
                }
            });
            var first = await Task.WhenAny(accepted.Task, injector);
            if (first == injector && injector.IsFaulted)
            {
                abort.Cancel();
                await injector;
            }
            // Faults stop once the cluster accepted every notification; the copies still being retried then get the
            // overrun again, with every fault over, to be answered by their replica.
            stormDone.Cancel();
            await injector;
            slack.Faults = scenario.Slack is { MaxLatency: var latency } ? new VendorFaults { MaxLatency = latency } : VendorFaults.None;
            pagerDuty.Faults = VendorFaults.None;
            // Whatever an injector left broken is mended, as an operator would.
            foreach (var proxy in proxies) proxy.Restore();
            if (!postgres.Running) await postgres.StartAsync();
            if (!rabbit.Running) await rabbit.StartAsync();
            foreach (var replica in replicas.Where(r => !r.Running)) await replica.StartAsync(budget: TimeSpan.FromSeconds(120));
            if (!abort.IsCancellationRequested) abort.CancelAfter(s.StormOverrun);
            try { await storm; }
            catch (OperationCanceledException)
            {
                Progress("storm stopped with copies still unanswered");
            }
            await progress;
            result.Notifications = stats.Notifications;
            result.Posts = stats.Posts;
            result.Rejected4xx = stats.Rejected4xx;
            result.Unanswered = (int)(stats.Notifications - stats.Accepted - stats.Dropped);
            result.CopiesUnanswered = stats.CopiesUnanswered;
            Progress($"storm done: {stats.Accepted}/{stats.Notifications} accepted, {stats.Answered2xx} copies answered 2xx ({stats.Posts} POSTs, {stats.Retried} retried, {stats.Rejected4xx} 4xx, {stats.CopiesUnanswered} copies unanswered); waiting for the cluster to settle");

            var settle = scale with { Stall = s.Stall, MaxWait = s.MaxWait };
            result.Quiescent = await Scenarios.WaitQuiescentAsync(WithScale(context, settle), groups.Count);
            await Scenarios.CheckAsync(context, groups, "");
            await DiagnoseAsync(context, result);
        }
        catch (Exception ex)
        {
            result.Error = $"{ex.GetType().Name}: {ex.Message}";
            Progress($"error: {ex}");
        }
        finally
        {
            result.Faults = faults.Snapshot();
            foreach (var replica in replicas) replica.Dispose();
            if (replicas.Count > 0 && result.FailedChecks().Count > 0)
                Progress($"replica logs: {string.Join(", ", replicas.Select(r => r.Log))} (kept when a check fails, or with B25_FAULTS_KEEP=1)");
            foreach (var proxy in proxies) await proxy.DisposeAsync();
            rabbit?.Dispose();
            postgres?.Dispose();
            if (slack is not null) await slack.DisposeAsync();
            if (pagerDuty is not null) await pagerDuty.DisposeAsync();
            result.Duration = watch.Elapsed;
        }
        return result;
    }

    private static ScenarioContext WithScale(ScenarioContext c, Scale scale) => new()
    {
        WorkDir = c.WorkDir, Service = c.Service, Replicas = c.Replicas, Slack = c.Slack, PagerDuty = c.PagerDuty, Faults = c.Faults, Scale = scale,
        Progress = c.Progress, Result = c.Result, Stats = c.Stats, Rabbit = c.Rabbit, Postgres = c.Postgres, Proxies = c.Proxies,
    };

    /// <summary>After the checks, on failure: what the shared store says about the deliveries, for the report.</summary>
    private static async Task DiagnoseAsync(ScenarioContext c, ScenarioResult r)
    {
        if (c.Postgres is not { } postgres) return;
        var statuses = await postgres.QueryAsync(
            "SELECT channel || ' ' || kind || ' ' || status, count(*) FROM deliveries GROUP BY 1 ORDER BY 1",
            x => $"{x.GetString(0)} {x.GetInt64(1)}");
        c.Progress($"deliveries by channel, kind and status: {string.Join(", ", statuses)}");
        var quarantined = await postgres.QueryAsync("SELECT count(*) FROM notifications WHERE outcome = 'Quarantined'", x => x.GetInt64(0));
        if (quarantined[0] > 0) r.Notes.Add($"{quarantined[0]} notification(s) quarantined");
        var failed = await postgres.QueryAsync("SELECT count(*) FROM deliveries WHERE status = 'failed'", x => x.GetInt64(0));
        if (failed[0] > 0) r.Notes.Add($"{failed[0]} delivery(ies) failed for good");
    }

    // ---- fault injectors -------------------------------------------------------------------------------------------

    private static ServiceHost Victim(ScenarioContext c) => c.Replicas[Random.Shared.Next(c.Replicas.Count)];

    private static async Task KillReplicas(ScenarioContext c, CancellationToken stormDone) =>
        await KillReplicasAsync(c, c.Scale.Cluster.KillEvery, stormDone);

    /// <summary>
    /// Kills a random ready replica (kill -9) and starts it again in the background, so the next kill does not wait for
    /// a slow start; at least one replica is always left answering.
    /// </summary>
    private static async Task KillReplicasAsync(ScenarioContext c, (double Min, double Max) every, CancellationToken stormDone)
    {
        var restarting = new HashSet<ServiceHost>();
        var restarts = new List<Task>();
        while (await ScenarioContext.PauseAsync(every, stormDone))
        {
            List<ServiceHost> up;
            lock (restarting) up = c.Replicas.Where(r => r.Running && !restarting.Contains(r)).ToList();
            if (up.Count < 2) continue;
            var victim = up[Random.Shared.Next(up.Count)];
            c.RecordKill(victim.Name);
            victim.Kill();
            c.Faults.Add("replica kill -9");
            c.Progress($"killed {victim.Name} (kill -9)");
            lock (restarting) restarting.Add(victim);
            restarts.Add(Task.Run(async () =>
            {
                // Ready may also wait for PostgreSQL or this replica's proxy to heal when other faults run alongside.
                var down = Stopwatch.StartNew();
                await victim.StartAsync(budget: TimeSpan.FromSeconds(180));
                c.Progress($"{victim.Name} ready again {down.Elapsed.TotalSeconds:0.0} s after its kill");
                lock (restarting) restarting.Remove(victim);
            }, CancellationToken.None));
        }
        await Task.WhenAll(restarts);
    }

    private static async Task BrokerRestarts(ScenarioContext c, CancellationToken stormDone) =>
        await Scenarios.BrokerRestartsAsync(c, c.Scale.Cluster.BrokerStopEvery, c.Scale.Cluster.BrokerDown, stormDone);

    private static async Task PostgresRestarts(ScenarioContext c, CancellationToken stormDone) =>
        await PostgresRestartsAsync(c, c.Scale.Cluster.PostgresRestartEvery, stormDone);

    private static async Task PostgresRestartsAsync(ScenarioContext c, (double Min, double Max) every, CancellationToken stormDone)
    {
        var postgres = c.Postgres!;
        while (await ScenarioContext.PauseAsync(every, stormDone))
        {
            c.Progress("stopping PostgreSQL (fast)");
            await postgres.StopFastAsync();
            c.Faults.Add("postgres restart");
            await ScenarioContext.PauseAsync(c.Scale.Cluster.PostgresDown, CancellationToken.None);
            await postgres.StartAsync();
            c.Progress("PostgreSQL started again");
        }
    }

    private static async Task DropSessions(ScenarioContext c, CancellationToken stormDone) =>
        await DropSessionsAsync(c, c.Scale.Cluster.DropEvery, stormDone);

    private static async Task DropSessionsAsync(ScenarioContext c, (double Min, double Max) every, CancellationToken stormDone)
    {
        var postgres = c.Postgres!;
        var sessions = 0;
        while (await ScenarioContext.PauseAsync(every, stormDone))
        {
            if (!postgres.Running) continue;
            try
            {
                var n = await postgres.TerminateServiceSessionsAsync(c.Scale.Cluster.DropShare);
                if (n == 0) continue;
                sessions += n;
                c.Faults.Add("postgres sessions dropped");
            }
            catch (NpgsqlException) { } // PostgreSQL restarting (mixed): nothing dropped
        }
        c.Progress($"{sessions} service sessions terminated in all");
        lock (c.Result.Notes) c.Result.Notes.Add($"{sessions} service sessions terminated");
    }

    private static async Task CutReplicas(ScenarioContext c, CancellationToken stormDone) =>
        await CutReplicasAsync(c, c.Scale.Cluster.CutEvery, stormDone);

    /// <summary>
    /// One loop per replica: its replica is cut off from PostgreSQL <paramref name="every"/> seconds after its last cut
    /// healed, for <see cref="ReplicaScale.CutHold"/>, alternately a blackhole and a reset. At most all but one replica are
    /// cut at once (a replica whose turn comes while the others are cut waits for its next turn), so some replica always
    /// reaches PostgreSQL, as kills always leave one replica answering.
    /// </summary>
    private static async Task CutReplicasAsync(ScenarioContext c, (double Min, double Max) every, CancellationToken stormDone)
    {
        var gate = new Lock();
        var cut = 0;
        await Task.WhenAll(c.Proxies.Select((proxy, i) => Task.Run(async () =>
        {
            var kind = i % 2 == 0 ? TcpProxy.CutKind.Blackhole : TcpProxy.CutKind.Reset;
            while (await ScenarioContext.PauseAsync(every, stormDone))
            {
                lock (gate)
                {
                    if (cut >= c.Proxies.Count - 1) continue;
                    cut++;
                }
                try
                {
                    var connections = proxy.Cut(kind);
                    var name = kind == TcpProxy.CutKind.Blackhole ? "blackhole" : "reset";
                    c.Faults.Add($"replica cut off from PostgreSQL ({name})");
                    c.Progress($"{c.Replicas[i].Name} cut off from PostgreSQL ({name}, {connections} connection(s))");
                    await ScenarioContext.PauseAsync(c.Scale.Cluster.CutHold, CancellationToken.None);
                    proxy.Restore();
                    c.Progress($"{c.Replicas[i].Name} reaches PostgreSQL again");
                }
                finally
                {
                    lock (gate) cut--;
                }
                kind = kind == TcpProxy.CutKind.Blackhole ? TcpProxy.CutKind.Reset : TcpProxy.CutKind.Blackhole;
            }
        }, CancellationToken.None)));
    }

    private static async Task VendorOutages(ScenarioContext c, CancellationToken stormDone) =>
        await VendorOutagesAsync(c, c.Scale.Cluster.VendorHealthy, stormDone);

    private static async Task VendorOutagesAsync(ScenarioContext c, (double Min, double Max) healthy, CancellationToken stormDone)
    {
        var share = c.Scale.Cluster.VendorFaultShare;
        var slack = new VendorFaults
        {
            RateLimited = share * 0.3, ServerError = share * 0.25, Slow = share * 0.25, ResetBefore = share * 0.1, ResetAfter = share * 0.1,
        };
        var pagerDuty = new VendorFaults
        {
            RateLimited = share * 0.35, RetryAfterShare = 0.5, ServerError = share * 0.35, Slow = share * 0.3, SlowDelay = TimeSpan.FromSeconds(3),
        };
        var calm = c.Slack.Faults;
        while (await ScenarioContext.PauseAsync(healthy, stormDone))
        {
            c.Slack.Faults = slack;
            c.PagerDuty.Faults = pagerDuty;
            c.Progress("Slack and PagerDuty failing");
            var more = await ScenarioContext.PauseAsync(c.Scale.Cluster.VendorOutage, stormDone);
            c.Slack.Faults = calm;
            c.PagerDuty.Faults = VendorFaults.None;
            c.Progress("Slack and PagerDuty healthy again");
            if (!more) break;
        }
    }

    /// <summary>
    /// Slack and PagerDuty fail for minutes without a break: most calls answered 429 with a Retry-After longer than the
    /// service waits in place (the outbox and the shared claim wait instead, for every replica), 5xx or slow (kept,
    /// answered after the timeout). Breakers open and half-open many times; the backlog is delivered once it heals.
    /// </summary>
    private static async Task VendorLongOutage(ScenarioContext c, CancellationToken stormDone)
    {
        var s = c.Scale.Cluster;
        var share = s.VendorLongFaultShare;
        if (!await ScenarioContext.PauseAsync((s.VendorLongFrom.TotalSeconds, s.VendorLongFrom.TotalSeconds), stormDone)) return;
        var calm = c.Slack.Faults;
        c.Slack.Faults = new VendorFaults
        {
            RateLimited = share * 0.35, RetryAfterSeconds = s.VendorLongRetryAfter, ServerError = share * 0.35, Slow = share * 0.3,
        };
        c.PagerDuty.Faults = new VendorFaults
        {
            RateLimited = share * 0.35, RetryAfterShare = 0.5, RetryAfterSeconds = s.VendorLongRetryAfter, ServerError = share * 0.35,
            Slow = share * 0.3, SlowDelay = TimeSpan.FromSeconds(3),
        };
        var outage = Stopwatch.StartNew();
        c.Progress($"Slack and PagerDuty failing for {s.VendorLongOutage.TotalSeconds:0} s");
        await ScenarioContext.PauseAsync((s.VendorLongOutage.TotalSeconds, s.VendorLongOutage.TotalSeconds), stormDone);
        c.Slack.Faults = calm;
        c.PagerDuty.Faults = VendorFaults.None;
        c.Progress($"Slack and PagerDuty healthy again after {outage.Elapsed.TotalSeconds:0} s");
        lock (c.Result.Notes) c.Result.Notes.Add($"Slack and PagerDuty failing for {outage.Elapsed.TotalSeconds:0} s");
    }

    /// <summary>Every fault at once, each injector at half its own rate.</summary>
    private static Task Mixed(ScenarioContext c, CancellationToken stormDone)
    {
        var s = c.Scale.Cluster;
        static (double, double) Half((double Min, double Max) r) => (r.Min * 2, r.Max * 2);
        return Task.WhenAll(
            KillReplicasAsync(c, Half(s.KillEvery), stormDone),
            Scenarios.BrokerRestartsAsync(c, Half(s.BrokerStopEvery), s.BrokerDown, stormDone),
            PostgresRestartsAsync(c, Half(s.PostgresRestartEvery), stormDone),
            DropSessionsAsync(c, Half(s.DropEvery), stormDone),
            CutReplicasAsync(c, Half(s.CutEvery), stormDone),
            VendorOutagesAsync(c, Half(s.VendorHealthy), stormDone));
    }

    // ---- the known Slack window ---------------------------------------------------------------------------------------

    /// <summary>
    /// Finds every Slack message (top level or thread reply) that Slack kept and whose posting replica was then killed
    /// before it recorded it (delivery_messages for a post, the delivery's completed_at for a reply), and what became of
    /// it: adopted by the next sender (found in the history), or posted again.
    /// </summary>
    public static async Task SlackWindowAsync(ScenarioContext c, List<string> examples)
    {
        var kills = c.Kills();
        if (kills.Count == 0 || c.Postgres is not { } postgres) return;
        var recorded = (await postgres.QueryAsync("SELECT message_id, created_at FROM delivery_messages WHERE channel = 'slack'",
                x => (Ts: x.GetString(0), At: x.GetInt64(1))))
            .GroupBy(x => x.Ts).ToDictionary(g => g.Key, g => g.Min(x => x.At));
        var completed = (await postgres.QueryAsync("SELECT id, completed_at FROM deliveries WHERE channel = 'slack'",
                x => (Id: x.GetInt64(0), At: x.IsDBNull(1) ? (long?)null : x.GetInt64(1))))
            .ToDictionary(x => x.Id, x => x.At);
        var w = c.Result.Window;
        var shown = 0;
        foreach (var channel in c.Slack.Channels)
        {
            var top = c.Slack.Threads(channel.Id);
            foreach (var (message, replies) in top)
            {
                if (KillAfter(kills, message) is { } kill && !(recorded.TryGetValue(message.Ts, out var at) && at <= kill))
                {
                    w.Posts++;
                    w.GapsMs.Add(kill - message.KeptAtMs);
                    var incident = Payload(message, "incident_id");
                    var again = top.Count(t => t.Top != message && Payload(t.Top, "incident_id") == incident && t.Top.KeptAtMs > message.KeptAtMs);
                    string fate;
                    if (recorded.ContainsKey(message.Ts)) { w.PostsAdopted++; fate = $"adopted (recorded at {Scenarios.Clock(recorded[message.Ts])})"; }
                    else if (again > 0) { w.PostsAgain++; fate = "posted again"; }
                    else { w.PostsOrphaned++; fate = "never recorded, not posted again"; }
                    if (shown++ < 6)
                        examples.Add($"Slack window: post ts {message.Ts} in #{channel.Name} kept at {Scenarios.Clock(message.KeptAtMs)}, {message.Poster} killed at {Scenarios.Clock(kill)}: {fate}");
                }
                foreach (var reply in replies)
                {
                    if (KillAfter(kills, reply) is not { } replyKill) continue;
                    if (!long.TryParse(Payload(reply, "first_delivery"), CultureInfo.InvariantCulture, out var delivery)) continue;
                    if (completed.GetValueOrDefault(delivery) is { } done && done <= replyKill) continue;
                    w.Replies++;
                    w.GapsMs.Add(replyKill - reply.KeptAtMs);
                    var again = replies.Any(x => x != reply && Payload(x, "first_delivery") == Payload(reply, "first_delivery"));
                    if (again) w.RepliesAgain++;
                    else w.RepliesAdopted++;
                    if (shown++ < 6)
                        examples.Add($"Slack window: reply ts {reply.Ts} (delivery {delivery}) in #{channel.Name} kept at {Scenarios.Clock(reply.KeptAtMs)}, {reply.Poster} killed at {Scenarios.Clock(replyKill)}: {(again ? "posted again" : "adopted")}");
                }
            }
        }
        if (w.Posts + w.Replies > 0) c.Progress($"known Slack window: {w}");
    }

    /// <summary>The first kill of the message's poster after Slack kept it (unix ms), if any.</summary>
    private static long? KillAfter(List<(string Replica, long AtMs)> kills, SlackMessage message) =>
        kills.Where(k => k.Replica == message.Poster && k.AtMs >= message.KeptAtMs).Select(k => (long?)k.AtMs).Min();

    private static string? Payload(SlackMessage message, string key) =>
        message.Metadata?["event_payload"]?[key] is JsonValue v ? v.ToString() : null;
}
