using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;

namespace B25.FaultSuite;

/// <summary>The sizes of one run scale. ci: a small version of every scenario in a few minutes; full: at least 1,000 faults in all.</summary>
internal sealed record Scale(
    string Name,
    int KillGroups, TimeSpan KillSpread, (double Min, double Max) KillEvery,
    int BrokerGroups, TimeSpan BrokerSpread, (double Min, double Max) BrokerStopEvery, (double Min, double Max) BrokerDown,
    int DiskGroups, TimeSpan DiskSpread, (double Min, double Max) DiskFaultEvery, (double Min, double Max) DiskFaultHold,
    int VendorGroups, TimeSpan VendorSpread, double VendorFaultShare,
    TimeSpan MaxStepPause, TimeSpan Settle, TimeSpan Stall, TimeSpan MaxWait, TimeSpan StormOverrun)
{
    /// <summary>The sizes of the replica scenarios (a cluster on PostgreSQL and RabbitMQ).</summary>
    public required ReplicaScale Cluster { get; init; }

    public static Scale Ci { get; } = new("ci",
        KillGroups: 20, KillSpread: TimeSpan.FromSeconds(12), KillEvery: (1, 3),
        BrokerGroups: 20, BrokerSpread: TimeSpan.FromSeconds(14), BrokerStopEvery: (1.5, 3), BrokerDown: (2, 4),
        DiskGroups: 20, DiskSpread: TimeSpan.FromSeconds(12), DiskFaultEvery: (1.5, 3), DiskFaultHold: (1.5, 3),
        VendorGroups: 8, VendorSpread: TimeSpan.FromSeconds(3), VendorFaultShare: 0.3,
        MaxStepPause: TimeSpan.FromSeconds(1.5), Settle: TimeSpan.FromSeconds(2), Stall: TimeSpan.FromSeconds(50), MaxWait: TimeSpan.FromSeconds(100),
        StormOverrun: TimeSpan.FromSeconds(60)) { Cluster = ReplicaScale.Ci };

    public static Scale Full { get; } = new("full",
        KillGroups: 150, KillSpread: TimeSpan.FromSeconds(90), KillEvery: (2, 5),
        BrokerGroups: 120, BrokerSpread: TimeSpan.FromSeconds(90), BrokerStopEvery: (3, 8), BrokerDown: (2, 8),
        DiskGroups: 120, DiskSpread: TimeSpan.FromSeconds(80), DiskFaultEvery: (3, 6), DiskFaultHold: (2, 4),
        VendorGroups: 240, VendorSpread: TimeSpan.FromSeconds(70), VendorFaultShare: 0.4,
        MaxStepPause: TimeSpan.FromSeconds(3), Settle: TimeSpan.FromSeconds(5), Stall: TimeSpan.FromSeconds(60), MaxWait: TimeSpan.FromSeconds(360),
        StormOverrun: TimeSpan.FromSeconds(180)) { Cluster = ReplicaScale.Full };
}

/// <summary>What one scenario measured.</summary>
internal sealed class ScenarioResult
{
    public required string Name { get; init; }
    public int Groups { get; set; }
    public int Notifications { get; set; }
    public long Posts { get; set; }
    public long Rejected4xx { get; set; }
    public Dictionary<string, int> Faults { get; set; } = [];
    public int Lost { get; set; }
    public int ExtraTopLevel { get; set; }
    public int ExtraReplies { get; set; }
    public int LeftFiring { get; set; }
    public int Unapplied { get; set; }
    /// <summary>Notifications that never got a 2xx before the storm's time ran out (Alertmanager would still be retrying them).</summary>
    public int Unanswered { get; set; }
    /// <summary>Times the service still answered nothing but 503 well after a disk fault was cleared, and had to be restarted.</summary>
    public int StuckAfterFault { get; set; }
    /// <summary>Times the service's bus was not healthy within <see cref="Scenarios.ReadyAfterBroker"/> of its broker being up again (and the suite restarted it).</summary>
    public int NotReady { get; set; }
    /// <summary>From a copy of a group's first notification answered 2xx to its Slack message, over the groups: p50 / p99 / max (not a check).</summary>
    public string FirstPage { get; set; } = "-";
    public int PagerDutyWrong { get; set; }
    /// <summary>PagerDuty incidents beyond one per critical group: a trigger on a dedup_key with no open PagerDuty incident (after its resolve) opens another.</summary>
    public int PagerDutyExtraPages { get; set; }
    /// <summary>Triggers PagerDuty deduplicated (a trigger on a dedup_key that is open): harmless, reported.</summary>
    public int PagerDutyDeduplicated { get; set; }
    /// <summary>Service replicas of the scenario (0: one process on SQLite).</summary>
    public int Replicas { get; set; }
    /// <summary>Copies still unanswered by their replica when the storm's time ran out (the cluster had accepted the notification through another copy).</summary>
    public int CopiesUnanswered { get; set; }
    /// <summary>The known Slack window: Slack kept a message, then its replica was killed before it recorded it.</summary>
    public SlackWindow Window { get; } = new();
    /// <summary>The service's pending-deliveries gauge did not read 0 once nothing was pending in the store.</summary>
    public bool PendingGaugeWrong { get; set; }
    public int RetryAfterViolations { get; set; }
    public int MaxPerChannelPerSecond { get; set; }
    public bool BudgetExceeded { get; set; }
    public bool Quiescent { get; set; }
    public TimeSpan Duration { get; set; }
    public List<string> Notes { get; } = [];
    public string? Error { get; set; }
    public bool Skipped { get; set; }

    public int FaultTotal => Faults.Values.Sum();

    public List<string> FailedChecks()
    {
        var failed = new List<string>();
        if (Error is not null) failed.Add("error");
        if (Lost > 0) failed.Add("lost");
        if (ExtraTopLevel > 0) failed.Add("extra top-level posts");
        if (ExtraReplies > 0) failed.Add("extra thread replies");
        if (LeftFiring > 0) failed.Add("left firing");
        if (Unapplied > 0) failed.Add("unapplied");
        if (Unanswered > 0) failed.Add("unanswered");
        if (StuckAfterFault > 0) failed.Add("stuck after a disk fault");
        if (NotReady > 0) failed.Add("bus not healthy after the broker came back");
        if (Rejected4xx > 0) failed.Add("4xx answers");
        if (PagerDutyWrong > 0) failed.Add("PagerDuty");
        if (PagerDutyExtraPages > 0) failed.Add("extra PagerDuty pages");
        if (CopiesUnanswered > 0) failed.Add("copies unanswered");
        if (PendingGaugeWrong) failed.Add("pending gauge");
        if (RetryAfterViolations > 0) failed.Add("Retry-After");
        if (BudgetExceeded) failed.Add("send budget");
        return failed;
    }
}

internal delegate Task Injector(ScenarioContext context, CancellationToken stormDone);

/// <summary>Everything a scenario's fault injector may touch.</summary>
internal sealed class ScenarioContext
{
    public required string WorkDir { get; init; }
    public required ServiceHost Service { get; init; }
    public required SlackStandIn Slack { get; init; }
    public required PagerDutyStandIn PagerDuty { get; init; }
    public required FaultCounter Faults { get; init; }
    public required Scale Scale { get; init; }
    public required Action<string> Progress { get; init; }
    public required ScenarioResult Result { get; init; }
    public required StormStats Stats { get; init; }
    public RabbitNode? Rabbit { get; init; }
    public TmpfsMount? Disk { get; init; }
    /// <summary>The SQLite database of one process (null for a cluster on PostgreSQL).</summary>
    public string? Database { get; init; }
    /// <summary>A cluster's replicas (<see cref="Service"/> is the first); one process: just the service.</summary>
    public IReadOnlyList<ServiceHost> Replicas { get; init; } = [];
    public PostgresServer? Postgres { get; init; }
    /// <summary>Per replica (same index), the proxy between it and PostgreSQL, when the scenario cuts replicas off.</summary>
    public IReadOnlyList<TcpProxy> Proxies { get; init; } = [];
    private readonly List<(string Replica, long AtMs)> _kills = [];

    /// <summary>The service's API: a running replica.</summary>
    public string ApiBaseUrl => (Replicas.FirstOrDefault(r => r.Running) ?? Service).BaseUrl;

    /// <summary>Notes a kill -9 of a replica, just before the signal (unix ms).</summary>
    public void RecordKill(string replica)
    {
        lock (_kills) _kills.Add((replica, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
    }

    public List<(string Replica, long AtMs)> Kills() { lock (_kills) return [.. _kills]; }

    public static double Between((double Min, double Max) range) => range.Min + Random.Shared.NextDouble() * (range.Max - range.Min);

    /// <summary>Waits a random time in the range; false when the storm ended first.</summary>
    public static async Task<bool> PauseAsync((double Min, double Max) seconds, CancellationToken stormDone)
    {
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(Between(seconds)), stormDone);
            return true;
        }
        catch (OperationCanceledException) { return false; }
    }
}

/// <summary>A named scenario: its size, what it needs (a broker, a tmpfs) and its fault injector.</summary>
internal sealed record Scenario(string Name, string Description, Func<Scale, (int Groups, TimeSpan Spread)> Size, Injector Inject,
    bool NeedsRabbit = false, bool NeedsRoot = false, bool StartWithBrokerDown = false, VendorFaults? Slack = null, VendorFaults? PagerDuty = null,
    bool Cluster = false, bool NeedsProxies = false, bool InCi = true);

internal static class Scenarios
{
    public const int Teams = 6;
    public const int SlackBurst = 3;
    public const double SlackPerSecond = 1;
    public const string RoutingKey = "b25faultsuite0000000000000000000";

    public static IReadOnlyList<string> ChannelNames { get; } =
        [.. Enumerable.Range(0, Teams).Select(t => $"crit-t{t}"), .. Enumerable.Range(0, Teams).Select(t => $"alerts-t{t}")];

    /// <summary>
    /// The suite's Slack: a workspace of <see cref="ChannelNames"/> only that answers like Slack to the rest (unknown
    /// channel, thread, message, no token) and auth.test (the readiness check), pages as long as the service asks for.
    /// </summary>
    public static SlackStandIn Slack(Stopwatch clock, FaultCounter faults)
    {
        var slack = new SlackStandIn { Strict = true, AnswersAuthTest = true, Clock = clock, Counter = faults, PageSize = 1000 };
        slack.AddChannels(ChannelNames);
        return slack;
    }

    public static IReadOnlyList<Scenario> All(Scale scale) =>
    [
        new("kill-inmemory", "kill -9 at random moments during the storm, restart on the same database; InMemory transport",
            s => (s.KillGroups, s.KillSpread), KillStorm),
        new("kill-rabbitmq", "kill -9 at random moments during the storm, restart on the same database; RabbitMq transport",
            s => (s.KillGroups, s.KillSpread), KillStorm, NeedsRabbit: true),
        new("rabbitmq-restart", "RabbitMQ stopped mid-storm (alternately rabbitmqctl stop and kill -9 of the node) and started again, several times",
            s => (s.BrokerGroups, s.BrokerSpread), BrokerRestarts, NeedsRabbit: true),
        new("rabbitmq-down-at-start", "RabbitMQ down when the service starts, started a few seconds into the storm",
            s => (s.BrokerGroups / 2, s.BrokerSpread / 2), BrokerDownAtStart, NeedsRabbit: true, StartWithBrokerDown: true),
        new("rabbitmq-kill-at-start", "the service killed (kill -9) and started again, and RabbitMQ's node killed (kill -9) or stopped while the service's bus starts, 1-3 times in a row; the service must be ready soon after",
            s => (s.BrokerGroups / 2, s.BrokerSpread * 2), BrokerKillAtStart, NeedsRabbit: true, InCi: false),
        new("disk", "database on a small tmpfs: filled up (then the file removed) and read-only (then rw) during the storm",
            s => (s.DiskGroups, s.DiskSpread), DiskFaults, NeedsRoot: true),
        new("slack-slow", "Slack keeps the message and answers after the service's 1 s Slack:RequestTimeout",
            s => (s.VendorGroups, s.VendorSpread), VendorOnly, Slack: new VendorFaults { Slow = scale.VendorFaultShare * 0.6 }),
        new("slack-429", "Slack answers 429 with Retry-After: 1 (message not kept)",
            s => (s.VendorGroups, s.VendorSpread), VendorOnly, Slack: new VendorFaults { RateLimited = scale.VendorFaultShare }),
        new("slack-5xx", "Slack answers 500/503 (message not kept)",
            s => (s.VendorGroups, s.VendorSpread), VendorOnly, Slack: new VendorFaults { ServerError = scale.VendorFaultShare }),
        new("slack-reset", "Slack aborts the connection, half before keeping the message, half after",
            s => (s.VendorGroups, s.VendorSpread), VendorOnly,
            Slack: new VendorFaults { ResetBefore = scale.VendorFaultShare / 2, ResetAfter = scale.VendorFaultShare / 2 }),
        new("pagerduty", "PagerDuty answers 429 (half with Retry-After: 1, half without) and 500/502, evenly",
            s => (s.VendorGroups, s.VendorSpread), VendorOnly,
            PagerDuty: new VendorFaults { RateLimited = scale.VendorFaultShare * 0.5, RetryAfterShare = 0.5, ServerError = scale.VendorFaultShare * 0.5 }),
    ];

    /// <summary>The service's settings: stand-ins, quiet logs, short timeouts and retry delays, one Slack channel per team and severity class.</summary>
    public static Dictionary<string, string> ServiceSettings(string database, SlackStandIn slack, PagerDutyStandIn pagerDuty, RabbitNode? rabbit)
    {
        var env = new Dictionary<string, string>
        {
            ["Webhook__BearerToken"] = Storm.Token,
            ["Storage__ConnectionString"] = $"Data Source={database}",
            ["Slack__BotToken"] = "xoxb-fault-suite",
            ["Slack__ApiBaseUrl"] = slack.ApiBaseUrl,
            ["Slack__RequestTimeout"] = "00:00:01",
            ["Slack__MessagesPerSecondPerChannel"] = SlackPerSecond.ToString(CultureInfo.InvariantCulture),
            ["Slack__BurstPerChannel"] = SlackBurst.ToString(CultureInfo.InvariantCulture),
            ["PagerDuty__RoutingKey"] = RoutingKey,
            ["PagerDuty__EventsUrl"] = pagerDuty.EventsUrl,
            ["PagerDuty__RequestTimeout"] = "00:00:02",
            ["PagerDuty__RetryDelay"] = "00:00:01",
            ["Bus__Transport"] = rabbit is null ? "InMemory" : "RabbitMq",
            ["Logging__LogLevel__Default"] = "Warning",
            ["DOTNET_gcServer"] = "0",
        };
        if (rabbit is not null) env["Bus__RabbitMq__Uri"] = rabbit.Uri;
        // Routes 1..12 replace the shipped ones (route 0, emergency-stop, stays): critical -> #crit-tN + PagerDuty, the rest -> #alerts-tN.
        // Configuration merges lists by index, so what a shipped route sets and these do not is cleared: the receiver
        // the shipped routes are keyed on (these match labels), and the critical route's escalation (after 30 days: never
        // within a run; escalation has tests of its own).
        for (var i = 1; i <= 2 * Teams; i++) env[$"Routing__Routes__{i}__Receiver"] = "";
        env["Routing__Routes__1__Escalation__After"] = "30.00:00:00";
        for (var t = 0; t < Teams; t++)
        {
            var crit = 1 + t;
            env[$"Routing__Routes__{crit}__Name"] = $"crit-t{t}";
            env[$"Routing__Routes__{crit}__Matchers__0"] = "severity=\"critical\"";
            env[$"Routing__Routes__{crit}__Matchers__1"] = $"team=\"t{t}\"";
            env[$"Routing__Routes__{crit}__Slack__Channel"] = $"#crit-t{t}";
            env[$"Routing__Routes__{crit}__PagerDuty__RoutingKey"] = "default";
            var rest = 1 + Teams + t;
            env[$"Routing__Routes__{rest}__Name"] = $"alerts-t{t}";
            env[$"Routing__Routes__{rest}__Matchers__0"] = "severity!=\"critical\"";
            env[$"Routing__Routes__{rest}__Matchers__1"] = $"team=\"t{t}\"";
            env[$"Routing__Routes__{rest}__Slack__Channel"] = $"#alerts-t{t}";
        }
        return env;
    }

    private static async Task KillStorm(ScenarioContext c, CancellationToken stormDone)
    {
        while (await ScenarioContext.PauseAsync(c.Scale.KillEvery, stormDone))
        {
            c.Service.Kill();
            c.Faults.Add("kill -9");
            await c.Service.StartAsync();
        }
    }

    private static async Task BrokerDownAtStart(ScenarioContext c, CancellationToken stormDone)
    {
        // The service was started with the broker down; the storm is already posting to it.
        await ScenarioContext.PauseAsync(c.Scale.BrokerDown, CancellationToken.None);
        c.Progress("starting RabbitMQ (it was down when the service started)");
        await c.Rabbit!.StartAsync();
    }

    /// <summary>How soon after its broker is up again the service's bus must be healthy (it reconnects within seconds).</summary>
    public static readonly TimeSpan ReadyAfterBroker = TimeSpan.FromSeconds(90);

    /// <summary>
    /// Kills the service, starts it again, and kills or stops the broker's node at a random moment of the service's first seconds
    /// (its bus connecting and declaring its queues), 1-3 times in a row, starting it again each time. The service's bus must be
    /// healthy within <see cref="ReadyAfterBroker"/> of the broker being up, by itself or by exiting so that it is started again (the
    /// suite starts an exited process again, as an orchestrator would); readiness does not tell, since a replica whose bus is down
    /// stays ready and applies its journal itself. If it is not, it counts as not ready and the suite restarts it.
    /// </summary>
    private static async Task BrokerKillAtStart(ScenarioContext c, CancellationToken stormDone)
    {
        var rabbit = c.Rabbit!;
        while (await ScenarioContext.PauseAsync(c.Scale.KillEvery, stormDone))
        {
            c.Service.Kill();
            c.Faults.Add("kill -9");
            c.Service.Launch();
            // The bus first connects about 1.5 s after the launch (on this machine); then, as the node comes back, the bus
            // reconnects, and up to two more kills land in that.
            var sinceLaunch = TimeSpan.FromSeconds(ScenarioContext.Between((1.0, 5.0)));
            await Task.Delay(sinceLaunch, CancellationToken.None);
            var faults = Random.Shared.Next(1, 4);
            for (var k = 0; k < faults; k++)
            {
                if (k > 0) await Task.Delay(TimeSpan.FromSeconds(ScenarioContext.Between((0.0, 2.0))), CancellationToken.None);
                // At random a kill -9 of the node or an orderly stop (the broker closes its connections first).
                await BreakBrokerAsync(c, crash: Random.Shared.Next(2) == 0, " during the service's start");
                await ScenarioContext.PauseAsync(k == faults - 1 ? c.Scale.BrokerDown : (0.5, 2.0), CancellationToken.None);
                await rabbit.StartAsync();
            }
            c.Progress($"broker stopped or killed {sinceLaunch.TotalSeconds:0.0} s after the service's start, {faults} time(s) in a row");
            var exitsBefore = c.Service.Exits;
            var up = Stopwatch.StartNew();
            if (await c.Service.WaitBusHealthyAsync(ReadyAfterBroker))
            {
                var exited = c.Service.Exits - exitsBefore;
                c.Progress($"service's bus healthy {up.Elapsed.TotalSeconds:0.0} s after RabbitMQ was up again{(exited > 0 ? $" (it exited {exited} time(s) and was started again)" : "")}");
                continue;
            }
            c.Result.NotReady++;
            var note = $"the service's bus was not healthy {ReadyAfterBroker.TotalSeconds:0} s after RabbitMQ was up again (killed {sinceLaunch.TotalSeconds:0.0} s into its start); the suite restarted it";
            c.Result.Notes.Add(note);
            c.Progress(note);
            c.Service.Kill();
            await c.Service.StartAsync();
        }
    }

    private static Task BrokerRestarts(ScenarioContext c, CancellationToken stormDone) =>
        BrokerRestartsAsync(c, c.Scale.BrokerStopEvery, c.Scale.BrokerDown, stormDone);

    /// <summary>Kills the node (<paramref name="crash"/>) or stops it in order, and counts the fault ("broker kill -9" or "broker stop", then <paramref name="when"/>).</summary>
    private static async Task BreakBrokerAsync(ScenarioContext c, bool crash, string when = "")
    {
        if (crash) await c.Rabbit!.KillAsync();
        else await c.Rabbit!.StopAsync();
        c.Faults.Add((crash ? "broker kill -9" : "broker stop") + when);
    }

    public static async Task BrokerRestartsAsync(ScenarioContext c, (double Min, double Max) every, (double Min, double Max) down, CancellationToken stormDone)
    {
        var rabbit = c.Rabbit!;
        var crash = false;
        while (await ScenarioContext.PauseAsync(every, stormDone))
        {
            // Alternately an orderly stop and a crash of the node.
            c.Progress(crash ? "killing RabbitMQ (kill -9 of the node)" : "stopping RabbitMQ");
            await BreakBrokerAsync(c, crash);
            crash = !crash;
            await ScenarioContext.PauseAsync(down, CancellationToken.None);
            c.Progress("starting RabbitMQ");
            await rabbit.StartAsync();
        }
    }

    private static async Task DiskFaults(ScenarioContext c, CancellationToken stormDone)
    {
        var disk = c.Disk!;
        var readOnly = false;
        while (await ScenarioContext.PauseAsync(c.Scale.DiskFaultEvery, stormDone))
        {
            if (!readOnly)
            {
                var bytes = disk.Fill();
                c.Faults.Add("disk full");
                c.Progress($"disk full ({bytes / 1024} KiB written)");
                await ScenarioContext.PauseAsync(c.Scale.DiskFaultHold, CancellationToken.None);
                disk.Unfill();
                c.Progress("disk space freed");
                await EnsureAcceptingAsync(c, "disk full", stormDone);
            }
            else
            {
                var (code, output) = await disk.RemountAsync(readOnly: true);
                if (code == 0)
                {
                    c.Faults.Add("read-only filesystem");
                    c.Progress("filesystem read-only");
                    await ScenarioContext.PauseAsync(c.Scale.DiskFaultHold, CancellationToken.None);
                }
                else
                {
                    // Linux refuses remount,ro (EBUSY) while the service holds the database open for writing, so the
                    // filesystem turns read-only under a crashed service, which is started again on it, then rw.
                    c.Service.Kill();
                    (code, output) = await disk.RemountAsync(readOnly: true);
                    if (code != 0) throw new InvalidOperationException($"remount,ro failed even with the service stopped: {output}");
                    c.Faults.Add("read-only filesystem (service killed, restarted on it)");
                    c.Progress("filesystem read-only; service killed and started again on it");
                    var hold = TimeSpan.FromSeconds(ScenarioContext.Between(c.Scale.DiskFaultHold));
                    try { await c.Service.StartAsync(ready: false, budget: hold); }
                    catch (TimeoutException) { }
                }
                await disk.RemountAsync(readOnly: false);
                c.Progress("filesystem read-write again");
                if (!c.Service.Running) await c.Service.StartAsync(ready: false);
                await EnsureAcceptingAsync(c, "read-only filesystem", stormDone);
            }
            readOnly = !readOnly;
        }
    }

    /// <summary>
    /// After a disk fault is cleared the service must accept again by itself: some notification of the storm answered
    /// 2xx within 10 s (or the storm ends; every copy is retried at least once a second). If not, it is counted as stuck, and restarted as an operator would, so the
    /// rest of the scenario still measures something.
    /// </summary>
    private static async Task EnsureAcceptingAsync(ScenarioContext c, string fault, CancellationToken stormDone)
    {
        var before = c.Stats.Answered2xx;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline && !stormDone.IsCancellationRequested)
        {
            if (c.Stats.Answered2xx > before) return;
            await Task.Delay(200, CancellationToken.None);
        }
        if (stormDone.IsCancellationRequested) return;
        c.Result.StuckAfterFault++;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        string ready;
        try { ready = ((int)(await http.GetAsync(c.Service.BaseUrl + "/health/ready")).StatusCode).ToString(CultureInfo.InvariantCulture); }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException) { ready = "no answer"; }
        var note = $"after {fault} was cleared the service answered no notification 2xx for 10 s (/health/ready: {ready}); the suite restarted it";
        if (!c.Result.Notes.Contains(note)) c.Result.Notes.Add(note);
        c.Progress(note);
        c.Service.Kill();
        await c.Service.StartAsync(ready: false);
    }

    private static Task VendorOnly(ScenarioContext c, CancellationToken stormDone) => Task.CompletedTask;

    /// <summary>
    /// Waits until the service has nothing left to do: every group's incident closed, none open, no pending delivery in the
    /// store, and nothing changed (incidents, deliveries, the pending gauge, calls to the stand-ins) for <see cref="Scale.Settle"/>.
    /// Gives up after <see cref="Scale.MaxWait"/>, or when nothing changed for <see cref="Scale.Stall"/> while no delivery is
    /// pending and yet not every incident closed (longer than the service's recovery sweep, which republishes journaled
    /// notifications unprocessed for 30 s every 15 s). Pending deliveries are waited for up to MaxWait: they may sit behind a
    /// circuit breaker (30 s for PagerDuty) or a backoff. Pending is counted in the store (the SQLite file read-only, or
    /// PostgreSQL); the service's own gauge, b25_alerting_pending_deliveries, must agree once the service is quiet, or the
    /// run fails with "pending gauge" (an alert on the outbox backlog reads it).
    /// </summary>
    public static async Task<bool> WaitQuiescentAsync(ScenarioContext c, int groups)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var start = Stopwatch.StartNew();
        var lastChange = Stopwatch.StartNew();
        var last = "";
        var lastPrint = TimeSpan.Zero;
        while (true)
        {
            var api = c.ApiBaseUrl;
            var open = await ServiceApi.IncidentsAsync(http, api, "open");
            var closed = await ServiceApi.IncidentsAsync(http, api, "closed");
            var gauge = await ServiceApi.MetricAsync(http, api, "b25_alerting_pending_deliveries");
            var pending = await StorePendingAsync(c) ?? gauge;
            var state = $"{open?.Count}|{closed?.Count}|{pending}|{gauge}|{c.Slack.Changes}|{c.PagerDuty.Changes}";
            if (state != last)
            {
                last = state;
                lastChange.Restart();
            }
            if (open is { Count: 0 } && closed?.Count >= groups && pending == 0 && lastChange.Elapsed >= c.Scale.Settle)
            {
                await CheckPendingGaugeAsync(c, http);
                return true;
            }
            if (start.Elapsed - lastPrint >= TimeSpan.FromSeconds(10))
            {
                lastPrint = start.Elapsed;
                c.Progress($"waiting: {open?.Count.ToString(CultureInfo.InvariantCulture) ?? "?"} open, {closed?.Count.ToString(CultureInfo.InvariantCulture) ?? "?"} closed, " +
                           $"{pending?.ToString(CultureInfo.InvariantCulture) ?? "?"} pending deliveries (gauge {gauge?.ToString(CultureInfo.InvariantCulture) ?? "?"})");
            }
            if (lastChange.Elapsed >= c.Scale.Stall && pending is null or 0)
            {
                c.Result.Notes.Add($"gave up waiting: nothing changed for {c.Scale.Stall.TotalSeconds:0} s with {open?.Count} incident(s) open, {pending} deliveries pending");
                return false;
            }
            if (start.Elapsed >= c.Scale.MaxWait)
            {
                c.Result.Notes.Add($"gave up waiting after {c.Scale.MaxWait.TotalSeconds:0} s: {open?.Count} incident(s) open, {pending} deliveries pending");
                return false;
            }
            await Task.Delay(500);
        }
    }

    /// <summary>Pending deliveries as the store holds them; null when it cannot be read.</summary>
    private static async Task<double?> StorePendingAsync(ScenarioContext c)
    {
        const string sql = "SELECT count(*) FROM deliveries WHERE status = 'pending'";
        try
        {
            if (c.Postgres is { } postgres)
                return postgres.Running ? (await postgres.QueryAsync(sql, x => x.GetInt64(0)))[0] : null;
            if (c.Database is not { } database || !File.Exists(database)) return null;
            await using var db = new SqliteConnection($"Data Source={database};Mode=ReadOnly;Pooling=False");
            await db.OpenAsync();
            await using var cmd = db.CreateCommand();
            cmd.CommandText = sql;
            return Convert.ToInt64(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is SqliteException or Npgsql.NpgsqlException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>With nothing pending in the store, every running replica's gauge must read 0 within a few seconds (it is refreshed every second).</summary>
    private static async Task CheckPendingGaugeAsync(ScenarioContext c, HttpClient http)
    {
        foreach (var replica in (c.Replicas.Count > 0 ? c.Replicas : [c.Service]).Where(r => r.Running))
        {
            double? gauge = null;
            for (var i = 0; i < 10; i++)
            {
                gauge = await ServiceApi.MetricAsync(http, replica.BaseUrl, "b25_alerting_pending_deliveries");
                if (gauge == 0) break;
                await Task.Delay(500);
            }
            if (gauge is not null and not 0)
            {
                c.Result.PendingGaugeWrong = true;
                c.Result.Notes.Add($"b25_alerting_pending_deliveries of {replica.Name} reads {gauge} while the store holds no pending delivery");
                c.Progress($"b25_alerting_pending_deliveries of {replica.Name} reads {gauge} while the store holds no pending delivery");
            }
        }
    }

    /// <summary>A PagerDuty event for evidence lines: order, action, when it reached the stand-in and was accepted, who sent it.</summary>
    private static string Describe(PagerDutyEvent e) =>
        $"#{e.Seq} {e.Action} at {Clock(e.AtMs)}" + (e.AtMs - e.ArrivedMs >= 100 ? $" (arrived {Clock(e.ArrivedMs)})" : "") +
        (e.Caller is null ? "" : $" by {e.Caller}") + (e.ClientGone ? " (client gone before the answer)" : "");

    /// <summary>A unix-ms instant as the time of day, for evidence lines.</summary>
    public static string Clock(long unixMs) => DateTimeOffset.FromUnixTimeMilliseconds(unixMs).ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);

    /// <summary>The checks: Slack (one top-level message per group, RESOLVED, replies), incidents closed, journal applied, PagerDuty, Retry-After, budget.</summary>
    public static async Task CheckAsync(ScenarioContext c, IReadOnlyList<Group> groups, string database)
    {
        var r = c.Result;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        // The service's own list of closed incidents: on a loaded machine one read can outlast a short timeout, and a list that
        // could not be read must not count every incident as unapplied.
        JsonArray? listed = null;
        for (var attempt = 0; attempt < 3 && listed is null; attempt++)
        {
            if (attempt > 0) await Task.Delay(TimeSpan.FromSeconds(5));
            listed = await ServiceApi.IncidentsAsync(http, c.ApiBaseUrl, "closed");
        }
        if (listed is null) r.Error ??= "the service's list of closed incidents could not be read (3 tries, 60 s each): closed incidents not checked";
        var closed = listed ?? [];
        var closedKeys = closed.Select(i => (string?)i?["groupKey"]).Where(k => k is not null).ToHashSet();

        // Slack: every top-level message per channel, matched to its group by the token in its title.
        var channels = c.Slack.Channels.ToDictionary(ch => ch.Name);
        var examples = new List<string>();
        var firstPages = new List<long>();
        foreach (var g in groups)
        {
            var messages = c.Slack.Threads(channels[g.Channel].Id)
                .Select(t => (t.Top, t.Replies, t.Top.Text, Blocks: t.Top.Blocks?.ToJsonString() ?? ""))
                .Where(m => m.Text.Contains(g.Token, StringComparison.Ordinal) || m.Blocks.Contains(g.Token, StringComparison.Ordinal)).ToList();
            if (messages.Count == 0)
            {
                r.Lost++;
                if (examples.Count < 3) examples.Add($"lost: {g.Token} (#{g.Channel})");
            }
            r.ExtraTopLevel += Math.Max(0, messages.Count - 1);
            if (messages.Count > 0 && c.Stats.FirstAcceptedMs.TryGetValue(g.Token, out var acceptedMs))
                firstPages.Add(messages.Min(m => m.Top.KeptAtMs) - acceptedMs);
            if (messages.Count > 1 && examples.Count < 6)
                examples.Add($"{messages.Count} top-level posts: {g.Token} (#{g.Channel}): " +
                             string.Join(", ", messages.Select(m => $"ts {m.Top.Ts} by {m.Top.Poster} at {Clock(m.Top.KeptAtMs)}")));
            foreach (var m in messages)
            {
                var resolved = m.Blocks.Contains("\"RESOLVED: ", StringComparison.Ordinal) || (m.Blocks.Length == 0 && m.Text.Contains("RESOLVED", StringComparison.Ordinal));
                if (!resolved)
                {
                    r.LeftFiring++;
                    if (examples.Count < 9) examples.Add($"left firing: {g.Token} ts {m.Top.Ts}");
                }
            }
            // At most one reply per change after the first notification; identical replies are repeats.
            var replies = messages.SelectMany(m => m.Replies).Select(x => x.Text).ToList();
            var extra = Math.Max(Math.Max(0, replies.Count - (g.Bodies.Count - 1)), replies.Count - replies.Distinct().Count());
            r.ExtraReplies += extra;
            if (extra > 0 && examples.Count < 12)
                examples.Add($"{replies.Count} thread replies for {g.Bodies.Count - 1} change(s): {g.Token}: " +
                             string.Join(" / ", messages.SelectMany(m => m.Replies).Select(x =>
                                 $"ts {x.Ts} by {x.Poster} at {Clock(x.KeptAtMs)} metadata {x.Metadata?.ToJsonString() ?? "none"}: {x.Text.ReplaceLineEndings(" ")}")));
        }

        if (firstPages.Count > 0)
        {
            firstPages.Sort();
            string At(double q) => (firstPages[(int)Math.Min(firstPages.Count - 1, Math.Floor(q * firstPages.Count))] / 1000.0).ToString("0.0", CultureInfo.InvariantCulture);
            r.FirstPage = $"{At(0.5)} / {At(0.99)} / {At(1)} s";
        }

        // PagerDuty: a critical group triggers and resolves on one dedup_key, the resolve after the last trigger; no other group pages.
        var events = c.PagerDuty.Accepted;
        foreach (var g in groups)
        {
            // Triggers carry the group's title; a resolve may carry only the dedup_key.
            var keys = events.Where(e => e.Raw.Contains(g.Token, StringComparison.Ordinal)).Select(e => e.DedupKey).ToHashSet();
            var mine = events.Where(e => keys.Contains(e.DedupKey)).ToList();
            if (!g.Critical)
            {
                if (mine.Count > 0) r.PagerDutyWrong++;
                continue;
            }
            var ok = mine.Any(e => e.Action == "trigger") && mine.Count > 0 && mine[^1].Action == "resolve"
                     && mine.Select(e => e.DedupKey).Distinct().Count() == 1 && mine.All(e => e.RoutingKey == RoutingKey);
            if (!ok)
            {
                r.PagerDutyWrong++;
                if (examples.Count < 12) examples.Add($"PagerDuty: {g.Token}: {string.Join(", ", mine.Select(e => e.Action))}");
            }
            // What PagerDuty makes of them: a trigger on a dedup_key with no open PagerDuty incident opens one (a page);
            // a trigger while it is open is deduplicated; a resolve closes it. One page per group.
            var pages = 0;
            var triggers = 0;
            var open = new HashSet<string>();
            foreach (var e in mine)
            {
                if (e.Action == "trigger")
                {
                    triggers++;
                    if (open.Add(e.DedupKey)) pages++;
                }
                else if (e.Action == "resolve") open.Remove(e.DedupKey);
            }
            r.PagerDutyDeduplicated += triggers - pages;
            if (pages > 1)
            {
                r.PagerDutyExtraPages += pages - 1;
                if (examples.Count < 15) examples.Add($"PagerDuty: {g.Token}: {pages} pages: {string.Join(", ", mine.Select(Describe))}");
            }
        }

        // Retry-After and the send budget: chat.* calls per Slack channel, events per routing key.
        var slackLogs = c.Slack.Channels.Select(ch => ch.Calls).ToList();
        r.RetryAfterViolations = slackLogs.Sum(l => l.Violations) + c.PagerDuty.CallLogs.Sum(l => l.Violations);
        foreach (var ch in c.Slack.Channels)
            foreach (var e in ch.Calls.Examples.Take(2)) examples.Add($"Retry-After: #{ch.Name}: {e}");
        foreach (var e in c.PagerDuty.CallLogs.SelectMany(l => l.Examples).Take(3)) examples.Add($"Retry-After: PagerDuty: {e}");
        c.Progress($"most chat.* calls in flight at once on one channel: {(slackLogs.Count == 0 ? 0 : slackLogs.Max(l => l.MaxInFlight))}; " +
                   $"PagerDuty events in flight at once: {c.PagerDuty.CallLogs.Select(l => l.MaxInFlight).DefaultIfEmpty(0).Max()}");
        r.MaxPerChannelPerSecond = slackLogs.Count == 0 ? 0 : slackLogs.Max(l => l.MaxPerSecond());
        // A token bucket of rate 1/s and burst 3 allows 4 calls in a 1-s window; one more for timer granularity.
        r.BudgetExceeded = r.MaxPerChannelPerSecond > SlackBurst + (int)Math.Ceiling(SlackPerSecond) + 1;

        // The journal, read once the service (every replica) has stopped: every 2xx-answered notification is there and processed.
        foreach (var replica in c.Replicas.Count > 0 ? c.Replicas : [c.Service])
        {
            replica.Stop();
            if (replica.Exits > 0)
                r.Notes.Add($"{replica.Name} exited by itself {replica.Exits} time(s) (exit code {string.Join(", ", replica.ExitCodes.Distinct())}) and was started again");
        }
        var journal = new Dictionary<string, (long Rows, long Unprocessed)>();
        if (c.Postgres is { } postgres)
        {
            foreach (var (key, rows, unprocessed) in await postgres.QueryAsync(
                         "SELECT group_key, count(*), count(*) FILTER (WHERE processed_at IS NULL) FROM notifications GROUP BY group_key",
                         x => (x.GetString(0), x.GetInt64(1), x.GetInt64(2))))
                journal[key] = (rows, unprocessed);
            await Cluster.SlackWindowAsync(c, examples);
        }
        else
        {
            try
            {
                await using var db = new SqliteConnection($"Data Source={database};Mode=ReadOnly;Pooling=False");
                await db.OpenAsync();
                await using var cmd = db.CreateCommand();
                cmd.CommandText = "SELECT group_key, count(*), sum(processed_at IS NULL) FROM notifications GROUP BY group_key";
                await using var reader = await cmd.ExecuteReaderAsync();
                while (await reader.ReadAsync()) journal[reader.GetString(0)] = (reader.GetInt64(1), reader.GetInt64(2));
            }
            catch (SqliteException ex)
            {
                r.Notes.Add($"journal not readable: {ex.Message}");
            }
        }
        foreach (var g in groups)
        {
            var (rows, unprocessed) = journal.GetValueOrDefault(g.GroupKey);
            var fromJournal = (int)(Math.Max(0, g.Bodies.Count - rows) + unprocessed);
            var notClosed = listed is null || closedKeys.Contains(g.GroupKey) ? 0 : 1;
            r.Unapplied += Math.Max(fromJournal, notClosed);
            if (Math.Max(fromJournal, notClosed) > 0 && examples.Count < 15)
                examples.Add($"unapplied: {g.Token}: journal {rows} row(s), {unprocessed} unprocessed, incident {(notClosed == 0 ? "closed" : "not closed")}");
        }
        foreach (var e in examples) c.Progress("  " + e);
    }
}
