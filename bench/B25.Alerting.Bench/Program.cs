using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using B25.Alerting.Bench;

// B25.Alerting benchmark: see bench/README.md. Every phase runs against fresh service processes
// (a fresh SQLite or PostgreSQL database, a fresh RabbitMQ queue), so backlogs of one phase never leak into the next.
var options = BenchOptions.Parse(args);
var workDir = Path.Combine(Path.GetTempPath(), $"b25-bench-{Environment.ProcessId}");
// A folder of this name is an earlier run's (PIDs come round again): its database would be this run's, and the warm-up's
// notifications would change its incidents instead of opening new ones (the warm-up then waited forever for their posts).
if (Directory.Exists(workDir)) Directory.Delete(workDir, recursive: true);
Directory.CreateDirectory(workDir);
Console.Error.WriteLine($"work dir {workDir}");

// Ctrl-C / SIGTERM: stop the service and broker children before leaving.
using var onInt = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, Cleanup.OnSignal);
using var onTerm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, Cleanup.OnSignal);

var (serviceDll, commit) = options.ServiceDll is { } given ? (given, "prebuilt " + given) : BuildService(options.RepoRoot, options.Commit, workDir, options.ReadyToRun);
using var http = new HttpClient(new SocketsHttpHandler
{
    MaxConnectionsPerServer = 256,
    UseProxy = false,
    PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
})
{ Timeout = TimeSpan.FromSeconds(60) };

await using var slack = await SlackStandIn.StartAsync();
// channels phase: PagerDuty Events API and SMTP stand-ins (cheap, started always); the risk manager's
// consumer needs the broker, so it is started per RabbitMq transport below.
await using var pagerDuty = await PagerDutyStandIn.StartAsync();
using var smtp = new SmtpStandIn();
var wantChannels = options.Phases.Any(p => p.StartsWith("channels", StringComparison.Ordinal));
PostgresServer? postgres = null;
if (options.Storage == "Postgres")
{
    Console.Error.WriteLine($"starting a throwaway PostgreSQL ({options.PgBin}) on 127.0.0.1:{(options.PgPort == 0 ? "a free port" : options.PgPort)}");
    postgres = await PostgresServer.StartAsync(workDir, options.PgBin, options.PgPort, options.PgSettings);
    Console.Error.WriteLine($"PostgreSQL PID {postgres.Pid} on 127.0.0.1:{postgres.Port}, log {postgres.Log}");
}
var report = new StringBuilder();
report.AppendLine(Machine.Describe(commit));
if (postgres is not null)
    report.AppendLine(
        $"\nStorage: throwaway {postgres.Version} on 127.0.0.1:{postgres.Port} (data on the bench's temp folder; server settings " +
        $"{(postgres.Settings.Count == 0 ? "PostgreSQL's defaults" : "defaults but " + string.Join(", ", postgres.Settings.Select(kv => $"`{kv.Key}={kv.Value}`")))}), " +
        "a fresh database per phase; every replica of a phase on it.");
report.AppendLine();
foreach (var transport in options.Transports)
{
    RabbitBroker? broker = null;
    RiskManagerConsumer? riskManager = null;
    try
    {
        if (transport == "RabbitMq")
        {
            Console.Error.WriteLine($"starting a throwaway RabbitMQ on 127.0.0.1:{options.RabbitPort}");
            broker = await RabbitBroker.StartAsync(workDir, options.RabbitPort);
            if (wantChannels)
            {
                Console.Error.WriteLine("starting the risk-manager consumer (MassTransit, EmergencyStopRequested)");
                riskManager = await RiskManagerConsumer.StartAsync(broker.Uri, $"b25-bench-risk-manager-{Environment.ProcessId}");
            }
        }
        foreach (var replicas in options.Replicas)
        {
            try
            {
                var bench = new Bench(options, serviceDll, workDir, transport, broker?.Uri, broker?.NodePid, slack, http,
                    new ChannelStandIns(pagerDuty, smtp, riskManager), postgres, replicas);
                report.Append(await bench.RunAsync());
            }
            catch (Exception ex) when (ex is InvalidOperationException or TimeoutException or HttpRequestException or Npgsql.NpgsqlException)
            {
                Console.Error.WriteLine($"[{transport}, {replicas} replica(s)] failed: {ex}");
                report.AppendLine(CultureInfo.InvariantCulture, $"### {Bench.Title(transport, options.Storage, replicas)}\n\nNot measured: {ex.Message}\n");
            }
        }
    }
    catch (Exception ex) when (ex is InvalidOperationException or TimeoutException or HttpRequestException)
    {
        Console.Error.WriteLine($"[{transport}] failed: {ex}");
        report.AppendLine(CultureInfo.InvariantCulture, $"### Transport: {transport}\n\nNot measured: {ex.Message}\n");
    }
    finally
    {
        if (riskManager is not null) await riskManager.DisposeAsync();
        broker?.Dispose();
    }
}

postgres?.Dispose();
Console.WriteLine(report);
if (options.Out is not null)
{
    await File.WriteAllTextAsync(options.Out, report.ToString());
    Console.Error.WriteLine($"results written to {options.Out}");
}
return 0;

// Builds the service from a committed snapshot (git archive), so other people's uncommitted edits in the
// working tree never leak into the figures, and the report can name the exact commit.
static (string Dll, string Commit) BuildService(string repoRoot, string commitRef, string workDir, bool readyToRun)
{
    var sha = Run(repoRoot, "git", "rev-parse", "--short=12", commitRef + "^{commit}").Trim();
    var source = Path.Combine(workDir, "source");
    Directory.CreateDirectory(source);
    Console.Error.WriteLine($"exporting commit {sha} into {source}");
    Run(repoRoot, "/bin/sh", "-c", $"git archive --format=tar {sha} | tar -x -C '{source}'");
    var output = Path.Combine(workDir, "service");
    if (readyToRun)
    {
        // Precompiled (crossgen2) as `dotnet publish -p:PublishReadyToRun=true` makes it: less JIT at start.
        Console.Error.WriteLine($"publishing src/B25.Alerting (Release, ReadyToRun, linux-x64) into {output}");
        Run(source, "dotnet", "publish", Path.Combine("src", "B25.Alerting"), "-c", "Release", "-r", "linux-x64", "--self-contained", "false",
            "-p:PublishReadyToRun=true", "-o", output, "-nologo", "-v", "q");
        return (Path.Combine(output, "B25.Alerting.dll"), sha + " (ReadyToRun)");
    }
    Console.Error.WriteLine($"building src/B25.Alerting (Release) into {output}");
    Run(source, "dotnet", "build", Path.Combine("src", "B25.Alerting"), "-c", "Release", "-o", output, "-nologo", "-v", "q");
    return (Path.Combine(output, "B25.Alerting.dll"), sha);
}

static string Run(string dir, string file, params string[] args)
{
    var info = new ProcessStartInfo(file) { WorkingDirectory = dir, UseShellExecute = false, RedirectStandardOutput = true };
    foreach (var a in args) info.ArgumentList.Add(a);
    using var p = Process.Start(info)!;
    var text = p.StandardOutput.ReadToEnd();
    p.WaitForExit();
    if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}):\n{text}");
    return text;
}

internal sealed record BenchOptions(string[] Transports, string? ServiceDll, string RepoRoot, double Scale, int RabbitPort, string? Out,
    Dictionary<string, string> ServiceEnv, string[] Phases, string Commit, string Storage, int[] Replicas, int PgPort, string PgBin,
    Dictionary<string, string> PgSettings, int FirstPageRuns = 5, bool ReadyToRun = false, int NewRate = 500)
{
    /// <summary>Kept equal to the ENV lines of compose/alerting.Dockerfile.</summary>
    public static readonly IReadOnlyDictionary<string, string> ImageRuntimeEnv = new Dictionary<string, string>
    {
        ["DOTNET_TC_CallCountingDelayMs"] = "0",
    };

    public static BenchOptions Parse(string[] args)
    {
        string transport = "Both", commitRef = "HEAD";
        string? dll = null, output = null, repo = null;
        double scale = 1;
        var rabbitPort = 5699;
        // The runtime settings the service's image runs with (compose/alerting.Dockerfile): the bench measures what
        // production runs; --service-env overrides them (e.g. DOTNET_TC_CallCountingDelayMs=100, the runtime's default).
        var serviceEnv = new Dictionary<string, string>(ImageRuntimeEnv);
        string storage = "Sqlite", pgBin = PostgresServer.DefaultBin;
        int[] replicas = [1];
        var pgPort = 0;
        var pgSettings = new Dictionary<string, string>();
        var firstPageRuns = 5;
        var readyToRun = false;
        var newRate = 500;
        string[] phases = ["accept", "throughput", "duplicates", "mix", "mix-rate", "new-rate", "big", "slack", "channels"];
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--transport": transport = Next(); break;
                case "--service-dll": dll = Path.GetFullPath(Next()); break;
                case "--commit": commitRef = Next(); break;
                case "--repo": repo = Path.GetFullPath(Next()); break;
                case "--scale": scale = double.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--rabbit-port": rabbitPort = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--out": output = Path.GetFullPath(Next()); break;
                case "--service-env":
                    var kv = Next().Split('=', 2);
                    serviceEnv[kv[0]] = kv.Length == 2 ? kv[1] : "";
                    break;
                case "--phases": phases = Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries); break;
                case "--storage":
                    storage = Next().ToLowerInvariant() switch
                    {
                        "sqlite" => "Sqlite",
                        "postgres" or "postgresql" => "Postgres",
                        _ => throw new ArgumentException("--storage is Sqlite or Postgres"),
                    };
                    break;
                case "--replicas":
                    replicas = Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                        .Select(r => int.Parse(r, CultureInfo.InvariantCulture)).ToArray();
                    if (replicas.Length == 0 || replicas.Any(r => r is < 1 or > 8)) throw new ArgumentException("--replicas is 1..8 (or a list such as 1,2)");
                    break;
                case "--ready-to-run": readyToRun = true; break;
                case "--new-rate": newRate = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--first-page-runs": firstPageRuns = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--pg-port": pgPort = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--pg-statements": pgSettings["shared_preload_libraries"] = "pg_stat_statements"; break;
                case "--pg-bin": pgBin = Path.GetFullPath(Next()); break;
                case "--pg-setting":
                    var setting = Next().Split('=', 2);
                    if (setting.Length != 2) throw new ArgumentException("--pg-setting is NAME=VALUE, e.g. max_connections=200");
                    pgSettings[setting[0]] = setting[1];
                    break;
                default:
                    throw new ArgumentException($"unknown argument {args[i]}; see bench/README.md");
            }
        }
        var transports = transport.ToLowerInvariant() switch
        {
            "both" => new[] { "InMemory", "RabbitMq" },
            "inmemory" => ["InMemory"],
            "rabbitmq" => ["RabbitMq"],
            _ => throw new ArgumentException("--transport is InMemory, RabbitMq or Both"),
        };
        if (storage == "Sqlite" && replicas.Any(r => r > 1))
            throw new ArgumentException("--replicas above 1 needs --storage Postgres (SQLite is one process per file)");
        repo ??= FindRepo(Directory.GetCurrentDirectory()) ?? FindRepo(AppContext.BaseDirectory)
            ?? throw new ArgumentException("run from inside the repository or pass --repo");
        return new BenchOptions(transports, dll, repo, scale, rabbitPort, output, serviceEnv, phases, commitRef, storage, replicas, pgPort, pgBin, pgSettings, firstPageRuns, readyToRun, newRate);
    }

    private static string? FindRepo(string from)
    {
        for (var dir = new DirectoryInfo(from); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "B25.Alerting.sln"))) return dir.FullName;
        return null;
    }
}

internal sealed record ChannelStandIns(PagerDutyStandIn PagerDuty, SmtpStandIn Smtp, RiskManagerConsumer? RiskManager);

internal sealed partial class Bench(BenchOptions options, string serviceDll, string workDir, string transport, string? rabbitUri, int? brokerPid, SlackStandIn slack,
    HttpClient http, ChannelStandIns channels, PostgresServer? postgres, int replicas)
{
    /// <summary>The report's heading of a run: the transport alone for the embedded SQLite (as before), else storage and replicas too.</summary>
    public static string Title(string transport, string storage, int replicas) =>
        storage == "Sqlite" && replicas == 1
            ? $"Transport: {transport}"
            : $"Transport: {transport}, storage {storage}, {replicas} replica{(replicas == 1 ? "" : "s")}";

    /// <summary>A label for console lines and folder names.</summary>
    private string Run => postgres is null && replicas == 1 ? transport : $"{transport}-{options.Storage}-{replicas}r";

    private static readonly string[] ServicePhases = ["accept", "throughput", "duplicates", "mix", "mix-rate", "new-rate", "big", "slack"];

    public const string Token = "bench-token";
    private const int RatePerSecond = 200;
    private const int SlackRatePerSecond = 50;
    private const int Senders = 32;
    private const int BigAlerts = 20_000;
    private static long _nextId = 1;
    private readonly List<string> _notes = [];
    private readonly Dictionary<string, long> _peakRss = new();
    private readonly List<string> _cpu = [];
    /// <summary>Per phase: 1-minute load average at the start and end of the measurement; cores used by everything outside
    /// the bench (its service replicas, broker and PostgreSQL included) and stolen by the hypervisor meanwhile.</summary>
    private readonly Dictionary<string, (double Start, double End, double Others, double Steal)> _load = new();
    private List<byte[]> _warmupBodies = [];

    /// <summary>
    /// The accept p99 target: 15 ms for replicas on PostgreSQL (issue 8), 10 ms on RabbitMq with SQLite (issue 11); none for the
    /// in-memory bus, whose backlog is the process's own.
    /// </summary>
    private double? AcceptP99TargetMs => postgres is not null ? 15 : transport == "RabbitMq" ? 10 : null;

    private TimeSpan Seconds(double s) => TimeSpan.FromSeconds(s * options.Scale);

    public async Task<string> RunAsync()
    {
        var firstPage = options.Phases.Contains("first-page") ? await FirstPageAsync() : "";
        var accept = await PhaseAsync("accept", AcceptLatencyAsync);
        var throughput = await PhaseAsync("throughput", ThroughputAsync);
        var duplicates = await PhaseAsync("duplicates", DuplicatesAsync);
        var mix = await PhaseAsync("mix", MixAsync);
        var mixRate = await PhaseAsync("mix-rate", MixRateAsync);
        var newRate = await PhaseAsync("new-rate", NewRateAsync);
        var big = await PhaseAsync("big", BigAsync);
        var toSlack = await PhaseAsync("slack", SlackLatencyAsync);
        foreach (var run in ChannelRuns)
            await PhaseAsync(run.Name, service => ChannelsAsync(service, run), "channels", run.Env);
        var peak = _peakRss.Count == 0 ? new KeyValuePair<string, long>("none", 0) : _peakRss.MaxBy(p => p.Value);

        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"### {Title(transport, options.Storage, replicas)}");
        md.AppendLine();
        if (replicas > 1)
            md.AppendLine(
                $"{replicas} service replicas per phase on the same database and RabbitMQ queue, each its own port and `Storage__ReplicaName`; " +
                "the bench sends its requests round-robin over them; server-side figures are summed over the replicas.");
        if (options.ServiceEnv.Count > 0)
            md.AppendLine(CultureInfo.InvariantCulture, $"Service environment (the image's runtime settings and --service-env): {string.Join(", ", options.ServiceEnv.Select(e => $"`{e.Key}={e.Value}`"))}");
        md.AppendLine();
        md.Append(firstPage);
        if (!options.Phases.Intersect(ServicePhases).Any())
        {
            if (!options.Phases.Any(p => p.StartsWith("channels", StringComparison.Ordinal))) return md.ToString();
            md.Append(ChannelsMarkdown());
            md.AppendLine(CultureInfo.InvariantCulture, $"- CPU used by the service per phase, in cores (of 2 shared): {string.Join("; ", _cpu)}; load average at the end {File.ReadAllText("/proc/loadavg").Trim()}.");
            md.AppendLine();
            return md.ToString();
        }
        md.AppendLine("| # | measure | target | measured | | load average (1 min) at phase start / end; cores used by other work meanwhile |");
        md.AppendLine("|---|---|---|---|---|---|");
        md.AppendLine(CultureInfo.InvariantCulture, $"| 1 | durable accept latency, open loop {RatePerSecond} notifications/s x 10 alerts, {Seconds(20).TotalSeconds:F0} s (p50 / p99 / max) | {(AcceptP99TargetMs is { } target ? $"p99 <= {target:F0} ms" : "none set")} | {accept.Measured} | {accept.Verdict} | {LoadText("accept")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| 2 | max sustained accept throughput, closed loop {Senders} senders x 10 alerts, {Seconds(15).TotalSeconds:F0} s | >= 1,000 notifications/s | {throughput.Measured} | {throughput.Verdict} | {LoadText("throughput")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| 2c | realistic mix, closed loop {Senders} senders: 5 % new incidents, 15 % changes, 40 % repeats, 40 % copies; notifications applied by the state machine per second | >= 1,000 applied/s | {mix.Measured} | {mix.Verdict} | {LoadText("mix")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| 2d | the same mix, open loop at {MixRatePerSecond:N0} notifications/s for {Seconds(20).TotalSeconds:F0} s: does processing keep up (every accepted notification applied or recognised as known within {KeepUpSeconds:F0} s of the last send; accept p50 / p99 / max; unapplied backlog at most) | keeps up at >= 1,000 /s | {mixRate.Measured} | {mixRate.Verdict} | {LoadText("mix-rate")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| 2e | new incidents only (10 alerts each, one Slack post each), open loop at {NewRatePerSecond:N0} notifications/s for {Seconds(20).TotalSeconds:F0} s: does processing keep up (as 2d; and when the last Slack post arrived) | keeps up at >= 500 new incidents/s | {newRate.Measured} | {newRate.Verdict} | {LoadText("new-rate")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| 2b | diagnostic: the same closed loop re-sending journaled notifications (duplicates: parse + hash + journal transaction, no processing, no Slack) | none | {duplicates.Measured} | | {LoadText("duplicates")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| 3 | one {BigAlerts:N0}-alert notification: time to 200 (worst of 3) | <= 2 s | {big.Measured} | {big.Verdict} | {LoadText("big")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| 4 | notification to Slack stand-in (first chat.postMessage), {SlackRatePerSecond} new incidents/s over {Payloads.Channels} channels, {Seconds(20).TotalSeconds:F0} s (p50 / p99 / max) | p99 <= 50 ms | {toSlack.Measured} | {toSlack.Verdict} | {LoadText("slack")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| 5 | peak RSS of the service (VmHWM), worst phase{(replicas > 1 ? " and replica" : "")} | <= 300 MB | {peak.Value} MB ({peak.Key} phase; others: {string.Join(", ", _peakRss.Where(p => p.Key != peak.Key).Select(p => $"{p.Key} {p.Value} MB"))}) | {(peak.Value <= 300 ? "met" : "**missed**")} | |");
        md.AppendLine();
        foreach (var note in _notes) md.AppendLine(CultureInfo.InvariantCulture, $"- {note}");
        md.AppendLine();
        md.Append(ChannelsMarkdown());
        md.AppendLine(CultureInfo.InvariantCulture, $"- CPU used by the service per phase, in cores (of 2 shared): {string.Join("; ", _cpu)}; load average at the end {File.ReadAllText("/proc/loadavg").Trim()}.");
        md.AppendLine();
        return md.ToString();
    }

    private sealed record Outcome(string Measured, string Verdict);

    private string LoadText(string phase) =>
        _load.TryGetValue(phase, out var l) ? string.Create(CultureInfo.InvariantCulture, $"{l.Start:F2} / {l.End:F2}; other work {l.Others:F2} cores") : "";

    private async Task<Outcome> PhaseAsync(string name, Func<ServiceCluster, Task<Outcome>> phase, string? group = null,
        IReadOnlyDictionary<string, string>? extraEnv = null)
    {
        if (!options.Phases.Contains(name) && (group is null || !options.Phases.Contains(group))) return new Outcome("not run", "");
        Console.Error.WriteLine($"[{Run}] phase {name}: starting {(replicas == 1 ? "a fresh service" : $"{replicas} fresh service replicas")}");
        // PostgreSQL: a fresh database per phase, shared by the phase's replicas.
        var database = $"b25_bench_{Run}_{name}".ToLowerInvariant().Replace('-', '_');
        var connectionString = postgres is null ? null : await postgres.CreateDatabaseAsync(database);
        var env = Environment(name, extraEnv);
        using var service = await ServiceCluster.StartAsync(serviceDll, workDir, $"{Run}-{name}", replicas, i =>
        {
            if (connectionString is null) return env;
            return new Dictionary<string, string>(env)
            {
                ["Storage__Provider"] = "Postgres",
                ["Storage__ConnectionString"] = connectionString,
                ["Storage__ReplicaName"] = $"bench-{name}-r{i + 1}",
            };
        }, http);
        foreach (var r in service.Replicas)
            Console.Error.WriteLine($"[{Run}] phase {name}: service {r.Name} PID {r.Pid} at {r.BaseUrl}, log {r.Log}");
        await WarmUpAsync(service);
        Console.Error.WriteLine($"[{Run}] phase {name}: warmed up ({_warmUps[^1]}), measuring");
        var cpu0 = service.Replicas.Select(r => Posix.CpuSeconds(r.Pid)).ToList();
        var broker0 = brokerPid is { } bp0 ? Posix.CpuSeconds(bp0) : 0;
        var pg0 = postgres?.CpuSeconds() ?? 0;
        var db0 = postgres is null ? null : await postgres.StatsAsync(database);
        if (postgres is not null) await postgres.ResetStatementsAsync();
        var gc0 = await MetricsAsync(service);
        var self0 = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
        var backlog = postgres is null && rabbitUri is null ? null : BacklogSampler.Start(connectionString, rabbitUri, QueueName(name));
        using var stopProbe = new CancellationTokenSource();
        var probe = postgres?.ProbeRoundTripsAsync(database, stopProbe.Token);
        var load0 = Posix.Load1();
        var machine0 = Posix.MachineCpuSeconds();
        var wall0 = Stopwatch.GetTimestamp();
        var outcome = await phase(service);
        var wall = Stats.Ms(wall0, Stopwatch.GetTimestamp()) / 1000;
        var machine1 = Posix.MachineCpuSeconds();
        var load1 = Posix.Load1();
        var cpu = service.Replicas.Select((r, i) => (Posix.CpuSeconds(r.Pid) - cpu0[i]) / wall).ToList();
        var brokerCpu = brokerPid is { } bp ? (Posix.CpuSeconds(bp) - broker0) / wall : 0;
        var pgCpu = postgres is null ? 0 : (postgres.CpuSeconds() - pg0) / wall;
        var selfCpu = (Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds - self0) / wall;
        await stopProbe.CancelAsync();
        var roundTrips = probe is null ? null : await probe;
        if (backlog is not null)
        {
            await backlog.DisposeAsync();
            _notes.Add($"Backlog during {name}: {backlog.Describe()}.");
        }
        var gc1 = await MetricsAsync(service);
        string GroupCommits()
        {
            var commits = Counter(gc1, GroupCommitCount) - Counter(gc0, GroupCommitCount);
            return commits == 0 ? "no group commits" : $"{commits / wall:F0} group commits/s of {(Counter(gc1, GroupCommitShares) - Counter(gc0, GroupCommitShares)) / commits:F1} transactions each";
        }
        string Gc(int generation) => $"{Counter(gc1, $"dotnet_collection_count_total{{generation=\"{generation}\"}}") - Counter(gc0, $"dotnet_collection_count_total{{generation=\"{generation}\"}}"):F0}";

        // The load average counts the service's own runnable threads too: what other work took is the machine's busy time minus ours.
        var others = (machine1.Busy - machine0.Busy) / wall - cpu.Sum() - brokerCpu - pgCpu - selfCpu;
        _load[name] = (load0, load1, Math.Max(0, others), (machine1.Steal - machine0.Steal) / wall);
        var serviceCpu = replicas == 1 ? $"{cpu[0]:F2}" : $"{cpu.Sum():F2} ({string.Join(" + ", cpu.Select(c => c.ToString("F2", CultureInfo.InvariantCulture)))})";
        _cpu.Add($"{name} {serviceCpu} (bench client {selfCpu:F2}" +
                 (brokerPid is not null ? $", RabbitMQ node {brokerCpu:F2}" : "") +
                 (postgres is null ? "" : $", PostgreSQL {pgCpu:F2}") +
                 $", other work {_load[name].Others:F2}, steal {_load[name].Steal:F2}; " +
                 (postgres is null
                     ? $"SQLite writer held {(Counter(gc1, WriterBusy) - Counter(gc0, WriterBusy)) / wall:P0} of the phase, {(Counter(gc1, WriterTurns) - Counter(gc0, WriterTurns)) / wall:F0} write transactions/s, " +
                       $"{GroupCommits()}; "
                     : "") +
                 $"GCs gen0/1/2 {Gc(0)}/{Gc(1)}/{Gc(2)}, paused {(Counter(gc1, GcPause) - Counter(gc0, GcPause)) * 1000:F0} ms, " +
                 $"allocated {(Counter(gc1, GcAllocated) - Counter(gc0, GcAllocated)) / 1e6:F0} MB; " +
                 $"JIT during the phase {Counter(gc1, JitMethods) - Counter(gc0, JitMethods):F0} methods, {(Counter(gc1, JitTime) - Counter(gc0, JitTime)) * 1000:F0} ms " +
                 $"(warm-up before it: {(_warmUps.Count > 0 ? _warmUps[^1] : "none")}); load average 1 min {_load[name].Start:F2} -> {_load[name].End:F2})");
        if (postgres is not null && db0 is not null)
        {
            var statements = "";
            if (postgres.Statements)
            {
                // Per notification the service accepted (new or duplicate) during the phase: how many round trips each costs.
                var accepted = Counter(gc1, "b25_alerting_notifications_received_total") - Counter(gc0, "b25_alerting_notifications_received_total")
                               + Counter(gc1, "b25_alerting_duplicates_dropped_total") - Counter(gc0, "b25_alerting_duplicates_dropped_total");
                var top = await postgres.TopStatementsAsync(database, 12);
                var slowest = await postgres.TopStatementsAsync(database, 5, byTime: true);
                var calls = await postgres.StatementCallsAsync(database);
                statements = $" pg_stat_statements: {calls} statements but DISCARD ALL ({calls / Math.Max(1, accepted):F1} per notification accepted, {accepted:F0}); " +
                             "most called (calls, per accepted notification, mean server time): " +
                             string.Join("; ", top.Select(t => string.Create(CultureInfo.InvariantCulture,
                                 $"{t.Calls} ({t.Calls / Math.Max(1, accepted):F1}/n, {t.MeanMs:F2} ms) `{t.Query.Replace('`', '\'')}`"))) +
                             $"; most server time in total (total ms, calls, mean ms): " +
                             string.Join("; ", slowest.Select(t => string.Create(CultureInfo.InvariantCulture,
                                 $"{t.TotalMs:F0} ms ({t.Calls} calls, {t.MeanMs:F2} ms) `{t.Query.Replace('`', '\'')}`")));
            }
            _notes.Add($"PostgreSQL during {name} ({wall:F0} s from the end of the warm-up): {(await postgres.StatsAsync(database)).Delta(db0, wall)}; " +
                       $"a `SELECT 1` round trip from the bench every 100 ms meanwhile: {Stats.Summary(roundTrips ?? [])}.{statements}");
        }
        _peakRss[name] = service.PeakRssMb;
        Console.Error.WriteLine($"[{Run}] phase {name}: {outcome.Measured} {outcome.Verdict}; VmHWM {_peakRss[name]} MB; load {_load[name].Start:F2} -> {_load[name].End:F2}");
        return outcome;
    }

    /// <summary>The phase's RabbitMQ queue: its own per run and replica count, so nothing left in one is consumed by the next.</summary>
    private string QueueName(string phase) =>
        postgres is null && replicas == 1
            ? $"b25-bench-{phase}-{System.Environment.ProcessId}"
            : $"b25-bench-{Run.ToLowerInvariant()}-{phase}-{System.Environment.ProcessId}";

    private Dictionary<string, string> Environment(string phase, IReadOnlyDictionary<string, string>? extraEnv = null)
    {
        var env = new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["Webhook__BearerToken"] = Token,
            ["Slack__BotToken"] = "xoxb-bench",
            ["Slack__ApiBaseUrl"] = slack.BaseUrl,
            ["Slack__MessagesPerSecondPerChannel"] = "100",
            ["Slack__BurstPerChannel"] = "100",
            ["Bus__Transport"] = transport,
        };
        if (rabbitUri is not null)
        {
            env["Bus__RabbitMq__Uri"] = rabbitUri;
            env["Bus__RabbitMq__Queue"] = QueueName(phase);
        }
        if (phase.StartsWith("channels", StringComparison.Ordinal))
        {
            // The shipped routes as they are: severity="critical" -> Slack #trading-alerts-critical + PagerDuty
            // "default" + email "default" (Smtp:To); action="emergency-stop" (Continue) -> the risk manager.
            env["PagerDuty__RoutingKey"] = "bench-key";
            env["PagerDuty__EventsUrl"] = channels.PagerDuty.EventsUrl;
            env["Smtp__Host"] = "127.0.0.1";
            env["Smtp__Port"] = channels.Smtp.Port.ToString(CultureInfo.InvariantCulture);
            env["Smtp__Security"] = "None";
            env["Smtp__From"] = "alerts@bench.test";
            env["Smtp__To__0"] = "oncall@bench.test";
            env["RiskManager__MaxStopsPerWindow"] = "1000";
            foreach (var (k, v) in extraEnv ?? new Dictionary<string, string>()) env[k] = v;
            foreach (var (k, v) in options.ServiceEnv) env[k] = v;
            return env;
        }
        // Environment routes merge by index with appsettings.json's, properties and all (targets, Continue).
        // So the shipped routes keep their index and targets but get a first matcher no bench alert has;
        // the bench's routes come after them: channel="cN" -> #bench-N, then a catch-all.
        var shipped = ShippedRouteCount();
        for (var i = 0; i < shipped; i++)
            env[$"Routing__Routes__{i}__Matchers__0"] = "bench_route_disabled=\"true\"";
        for (var c = 0; c < Payloads.Channels; c++)
        {
            env[$"Routing__Routes__{shipped + c}__Name"] = $"bench-c{c}";
            env[$"Routing__Routes__{shipped + c}__Matchers__0"] = $"channel=\"c{c}\"";
            env[$"Routing__Routes__{shipped + c}__Slack__Channel"] = $"#bench-{c}";
        }
        env[$"Routing__Routes__{shipped + Payloads.Channels}__Name"] = "bench-catch-all";
        env[$"Routing__Routes__{shipped + Payloads.Channels}__Slack__Channel"] = "#bench-other";
        foreach (var (k, v) in options.ServiceEnv) env[k] = v;
        return env;
    }

    private int ShippedRouteCount()
    {
        var settings = Path.Combine(Path.GetDirectoryName(serviceDll)!, "appsettings.json");
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(settings),
            new System.Text.Json.JsonDocumentOptions { CommentHandling = System.Text.Json.JsonCommentHandling.Skip, AllowTrailingCommas = true });
        return json.RootElement.TryGetProperty("Routing", out var routing) && routing.TryGetProperty("Routes", out var routes) ? routes.GetArrayLength() : 0;
    }

    private const string JitMethods = "system_runtime_dotnet_jit_compiled_methods", JitTime = "system_runtime_dotnet_jit_compilation_time";
    // SQLite's single writer: the time write transactions held it (seconds) and how many there were, from the service's metrics.
    private const string WriterBusy = "b25_alerting_sqlite_writer_busy_seconds_total";
    private const string WriterTurns = "b25_alerting_sqlite_writer_turns_total";
    private const string GroupCommitCount = "b25_alerting_sqlite_group_commits_total";
    private const string GroupCommitShares = "b25_alerting_sqlite_group_commit_shares_total";

    // The runtime's total time the GC paused the process (seconds), from its own meter.
    private const string GcPause = "system_runtime_dotnet_gc_pause_time";
    // The bytes the process allocated on the managed heap, from the runtime's meter.
    private const string GcAllocated = "system_runtime_dotnet_gc_heap_total_allocated";

    /// <summary>
    /// JIT and pipeline warm-up: 200 notifications, 4 at a time, until all reached the Slack stand-in; then more rounds of 100 per
    /// replica until the runtime's tier-up has settled (a round and the second after it compiled fewer than
    /// <see cref="JitSettledMethods"/> methods per replica; at most <see cref="MaxJitRounds"/> rounds), so a phase measures the
    /// service as it runs once started, not its tier-1 compilation (a fresh process recompiles its hot methods for seconds after
    /// the first requests; the first-page phase measures a fresh start). What the JIT still did during a phase is in its CPU line.
    /// Ten rounds of 100 were not enough: with 2 replicas the last round still compiled 700-1,900 methods and the JIT compiled
    /// 2,500 more during a 20 s phase.
    /// </summary>
    private async Task WarmUpAsync(ServiceCluster service)
    {
        _warmupBodies = await WarmUpRoundAsync(service, 200);
        var rounds = 0;
        var last = Counter(await MetricsAsync(service), JitMethods);
        double compiled;
        do
        {
            await WarmUpRoundAsync(service, 100 * replicas);
            await Task.Delay(TimeSpan.FromSeconds(1));
            var now = Counter(await MetricsAsync(service), JitMethods);
            compiled = now - last;
            last = now;
            rounds++;
        } while (compiled >= JitSettledMethods * replicas && rounds < MaxJitRounds);
        _warmUps.Add($"{rounds} round(s), the last compiled {compiled:F0} methods");
    }

    private const int JitSettledMethods = 20, MaxJitRounds = 30;
    private readonly List<string> _warmUps = [];

    private async Task<List<byte[]>> WarmUpRoundAsync(ServiceCluster service, int count)
    {
        var ids = new List<long>();
        var bodies = new List<byte[]>();
        var sem = new SemaphoreSlim(4);
        var tasks = new List<Task>();
        for (var i = 0; i < count; i++)
        {
            var id = Interlocked.Increment(ref _nextId);
            ids.Add(id);
            var body = Payloads.Notification(id, 10, (int)(id % Payloads.Channels));
            bodies.Add(body);
            await sem.WaitAsync();
            tasks.Add(Task.Run(async () =>
            {
                try { await PostAsync(service, body); }
                finally { sem.Release(); }
            }));
        }
        await Task.WhenAll(tasks);
        await WaitForPostsAsync(ids, TimeSpan.FromSeconds(60));
        return bodies;
    }

    private async Task<int> WaitForPostsAsync(IReadOnlyCollection<long> ids, TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline)
        {
            if (ids.All(slack.FirstPostAt.ContainsKey)) return ids.Count;
            await Task.Delay(50);
        }
        return ids.Count(slack.FirstPostAt.ContainsKey);
    }

    private async Task<int> PostAsync(ServiceCluster service, byte[] body)
    {
        try
        {
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            using var request = new HttpRequestMessage(HttpMethod.Post, service.Next().BaseUrl + "/webhooks/alertmanager") { Content = content };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token);
            using var response = await http.SendAsync(request);
            await response.Content.ReadAsByteArrayAsync();
            return (int)response.StatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return -1;
        }
    }

    /// <summary>
    /// /metrics of every replica, one after the other: counters and histogram buckets of the same name add up
    /// across replicas (<see cref="Counter"/>, <see cref="Histogram.Parse"/>); a gauge of the shared store, which every
    /// replica reports alike, is read with <see cref="GaugeMax"/>.
    /// </summary>
    private async Task<string> MetricsAsync(ServiceCluster service) =>
        string.Join('\n', await Task.WhenAll(service.Replicas.Select(MetricsAsync)));

    private async Task<string> MetricsAsync(ServiceProcess replica) => await http.GetStringAsync(replica.BaseUrl + "/metrics");

    private static double GaugeMax(string metrics, string name) =>
        metrics.Split('\n').Where(l => l.StartsWith(name, StringComparison.Ordinal) && l.Length > name.Length && l[name.Length] is ' ' or '{')
            .Select(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture)).DefaultIfEmpty(double.NaN).Max();

    private static double Counter(string metrics, string name) =>
        metrics.Split('\n').Where(l => l.StartsWith(name, StringComparison.Ordinal) && l.Length > name.Length && (name.EndsWith('}') || l[name.Length] is ' ' or '{'))
            .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));

    /// <summary>Open loop: sends at fixed intended times, latency from the intended time (no coordinated omission).</summary>
    private async Task<(List<double> Latencies, Dictionary<int, int> Statuses, List<(long Id, long From)> Sent)> OpenLoopAsync(
        ServiceCluster service, int rate, TimeSpan duration, int alerts, Func<int, byte[]>? nextBody = null)
    {
        var count = (int)(rate * duration.TotalSeconds);
        var latencies = new double[count];
        var statuses = new int[count];
        var sent = new (long Id, long From)[count];
        var tasks = new Task[count];
        var start = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 10;
        for (var i = 0; i < count; i++)
        {
            var intended = start + (long)(i * (double)Stopwatch.Frequency / rate);
            var from = Stats.SleepUntil(intended);
            var id = Interlocked.Increment(ref _nextId);
            var index = i;
            sent[i] = (id, from);
            tasks[i] = Task.Run(async () =>
            {
                statuses[index] = await PostAsync(service, nextBody?.Invoke(index) ?? Payloads.Notification(id, alerts, (int)(id % Payloads.Channels)));
                latencies[index] = Stats.Ms(from, Stopwatch.GetTimestamp());
            });
        }
        await Task.WhenAll(tasks);
        // Raw samples for a closer look: seconds since start, latency ms, status.
        var csv = Path.Combine(workDir, $"{Run}-openloop-{rate}per-s-{Interlocked.Increment(ref _nextId)}.csv");
        await File.WriteAllLinesAsync(csv, Enumerable.Range(0, count).Select(i =>
            string.Create(CultureInfo.InvariantCulture, $"{Stats.Ms(start, sent[i].From) / 1000:F3},{latencies[i]:F2},{statuses[i]}")));
        return (latencies.ToList(), statuses.GroupBy(s => s).ToDictionary(g => g.Key, g => g.Count()), sent.ToList());
    }

    private static string StatusText(Dictionary<int, int> statuses) =>
        string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{(s.Key < 0 ? "no answer" : s.Key.ToString(CultureInfo.InvariantCulture))}: {s.Value}"));

    private async Task<Outcome> AcceptLatencyAsync(ServiceCluster service)
    {
        var beforeEach = await Task.WhenAll(service.Replicas.Select(MetricsAsync));
        var before = string.Join('\n', beforeEach);
        var (latencies, statuses, _) = await OpenLoopAsync(service, RatePerSecond, Seconds(20), 10);
        var afterEach = await Task.WhenAll(service.Replicas.Select(MetricsAsync));
        var after = string.Join('\n', afterEach);
        var server = Histogram.Parse(after, "b25_alerting_accept_duration_seconds").Minus(Histogram.Parse(before, "b25_alerting_accept_duration_seconds"));
        latencies.Sort();
        var processed = Counter(after, "b25_alerting_notifications_processed_total") - Counter(before, "b25_alerting_notifications_processed_total");
        var perReplica = replicas == 1 ? "" : "; per replica: " + string.Join("; ", service.Replicas.Select((r, i) =>
            $"{r.Name} accept {Histogram.Parse(afterEach[i], "b25_alerting_accept_duration_seconds").Minus(Histogram.Parse(beforeEach[i], "b25_alerting_accept_duration_seconds")).Describe()}, " +
            $"processed {Counter(afterEach[i], "b25_alerting_notifications_processed_total") - Counter(beforeEach[i], "b25_alerting_notifications_processed_total"):F0}"));
        _notes.Add($"1 (accept latency): client side {Stats.Summary(latencies)}; statuses {StatusText(statuses)}; server-side b25_alerting_accept_duration_seconds (the whole request: validate + journal; the bus publish is off the request path) {server.Describe()}; notifications processed by the state machine during the run: {processed:F0} of {latencies.Count}{perReplica}.");
        var ok = statuses.GetValueOrDefault(200) == latencies.Count;
        var p99 = Stats.Percentile(latencies, 99);
        var verdict = !ok ? "**errors**, see notes" : AcceptP99TargetMs is not { } target ? "(all 200)" : p99 <= target ? "met (all 200)" : "**missed** (all 200)";
        return new Outcome($"{Stats.F(Stats.Percentile(latencies, 50))} / {Stats.F(p99)} / {Stats.F(latencies[^1])} ms", verdict);
    }

    private Task<Outcome> ThroughputAsync(ServiceCluster service) =>
        ClosedLoopAsync(service, "2 (throughput)", _ =>
        {
            var id = Interlocked.Increment(ref _nextId);
            return Payloads.Notification(id, 10, (int)(id % Payloads.Channels));
        });

    /// <summary>
    /// Diagnostic: the same closed loop, re-sending the warm-up notifications, which the journal already
    /// holds. A duplicate is parsed, hashed and goes through the journal's write transaction, but is neither
    /// published nor processed: the accept path alone, without the state machine and Slack delivery.
    /// </summary>
    private Task<Outcome> DuplicatesAsync(ServiceCluster service) =>
        ClosedLoopAsync(service, "2b (diagnostic: duplicates only)", i => _warmupBodies[i % _warmupBodies.Count]);

    /// <summary>
    /// A realistic mix, as Alertmanager sends it during a busy hour, in the same closed loop: of every 20 notifications 1 opens an
    /// incident, 3 change one (an alert joins its group), 8 repeat one (repeat_interval: the same alerts, a fresher summary) and 8 are
    /// copies of a body already sent (the HA peer's, or a retry). Reports what was accepted, applied by the state machine (repeats and
    /// changes included; copies are dropped at the journal) and opened, per second.
    /// </summary>
    /// <summary>
    /// The mix's bodies, in order: of every 20, 1 opens an incident, 3 change one (an alert joins its group), 8 repeat one
    /// (the same alerts, a fresher summary) and 8 are copies of a body already sent. Safe to call from several senders.
    /// </summary>
    private static Func<int, byte[]> MixBodies()
    {
        var groups = new List<(long Id, int Alerts, byte[] Last)>();
        var gate = new object();
        return sequence =>
        {
            var kind = sequence % 20;
            lock (gate)
            {
                if (kind == 0 || groups.Count == 0)
                {
                    var id = Interlocked.Increment(ref _nextId);
                    var body = Payloads.Notification(id, 10, (int)(id % Payloads.Channels));
                    groups.Add((id, 10, body));
                    return body;
                }
                var at = Random.Shared.Next(groups.Count);
                var (gid, alerts, last) = groups[at];
                if (kind <= 3)
                {
                    var body = Payloads.Notification(gid, alerts + 1, (int)(gid % Payloads.Channels));
                    groups[at] = (gid, alerts + 1, body);
                    return body;
                }
                if (kind <= 11)
                {
                    var body = Payloads.Notification(gid, alerts, (int)(gid % Payloads.Channels), summary: $" (repeat {sequence})");
                    groups[at] = (gid, alerts, body);
                    return body;
                }
                return last;
            }
        };
    }

    private const int MixRatePerSecond = 1_000;
    private const double KeepUpSeconds = 2;

    /// <summary>
    /// The mix of <see cref="MixBodies"/>, open loop at <see cref="MixRatePerSecond"/> (latency from the intended send time):
    /// does processing keep up with intake at that rate? Every half second the unapplied backlog (accepted and journaled, not yet
    /// applied by the state machine: received minus processed) is read from /metrics; it keeps up when everything accepted is applied
    /// within <see cref="KeepUpSeconds"/> of the last send, so the backlog cannot grow without bound at this rate.
    /// </summary>
    private Task<Outcome> MixRateAsync(ServiceCluster service) =>
        KeepUpAsync(service, "2d", $"mix at {MixRatePerSecond:N0}/s", MixRatePerSecond, MixBodies());

    // Issue 11's target (500); --new-rate probes above or below it.
    private int NewRatePerSecond => options.NewRate;

    /// <summary>
    /// Every notification a new incident (10 alerts, one Slack post), open loop at <see cref="NewRatePerSecond"/>: does the state
    /// machine keep up with new incidents at that rate (issue 11: >= 500 new incidents/s), as <see cref="MixRateAsync"/> asks of
    /// the mix; it also reports when the last of their Slack posts reached the stand-in.
    /// </summary>
    private async Task<Outcome> NewRateAsync(ServiceCluster service)
    {
        var outcome = await KeepUpAsync(service, "2e", $"new incidents at {NewRatePerSecond:N0}/s", NewRatePerSecond, _ =>
        {
            var id = Interlocked.Increment(ref _nextId);
            return Payloads.Notification(id, 10, (int)(id % Payloads.Channels));
        }, countPosts: true);
        // Keeping up below the target's rate does not show the target.
        return NewRatePerSecond < 500 && outcome.Verdict == "met" ? outcome with { Verdict = "not shown (run below 500/s)" } : outcome;
    }

    private async Task<Outcome> KeepUpAsync(ServiceCluster service, string row, string label, int rate, Func<int, byte[]> bodies, bool countPosts = false)
    {
        var before = await MetricsAsync(service);
        double Backlog(string after) =>
            Counter(after, "b25_alerting_notifications_received_total") - Counter(before, "b25_alerting_notifications_received_total")
            - (Counter(after, "b25_alerting_notifications_processed_total") - Counter(before, "b25_alerting_notifications_processed_total"));
        using var stop = new CancellationTokenSource();
        var samples = new List<(double At, double Backlog)>();
        var started = Stopwatch.GetTimestamp();
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try { samples.Add((Stats.Ms(started, Stopwatch.GetTimestamp()) / 1000, Backlog(await MetricsAsync(service)))); }
                catch (HttpRequestException) { }
                try { await Task.Delay(500, stop.Token); } catch (OperationCanceledException) { }
            }
        });
        var postsBefore = slack.Posts;
        var (latencies, statuses, _) = await OpenLoopAsync(service, rate, Seconds(20), 10, bodies);
        var lastSend = Stopwatch.GetTimestamp();
        var atEnd = Backlog(await MetricsAsync(service));
        var backlog = atEnd;
        while (backlog > 0 && Stats.Ms(lastSend, Stopwatch.GetTimestamp()) < 90_000)
        {
            await Task.Delay(100);
            backlog = Backlog(await MetricsAsync(service));
        }
        var drain = Stats.Ms(lastSend, Stopwatch.GetTimestamp()) / 1000;
        var postsText = "";
        if (countPosts)
        {
            // Every accepted notification here opens an incident with one Slack post.
            var wanted = latencies.Count;
            while (slack.Posts - postsBefore < wanted && Stats.Ms(lastSend, Stopwatch.GetTimestamp()) < 120_000) await Task.Delay(100);
            postsText = $"; {slack.Posts - postsBefore} of {wanted} Slack posts arrived, the last {Stats.Ms(lastSend, Stopwatch.GetTimestamp()) / 1000:F1} s after the last send";
        }
        await stop.CancelAsync();
        await sampler;
        var after = await MetricsAsync(service);
        double Delta(string name) => Counter(after, name) - Counter(before, name);
        var seconds = Stats.Ms(started, Stopwatch.GetTimestamp()) / 1000;
        latencies.Sort();
        var maxBacklog = samples.Count == 0 ? atEnd : Math.Max(atEnd, samples.Max(x => x.Backlog));
        var handled = Delta("b25_alerting_notifications_processed_total") + Delta("b25_alerting_duplicates_dropped_total");
        _notes.Add($"{row} ({label}, open loop): {latencies.Count} sent, statuses {StatusText(statuses)}; accept latency from the intended send time {Stats.Summary(latencies)}; " +
                   $"{Delta("b25_alerting_notifications_received_total"):F0} journaled and {Delta("b25_alerting_notifications_processed_total"):F0} applied by the state machine, " +
                   $"{Delta("b25_alerting_duplicates_dropped_total"):F0} copies and repeats recognised as known at the journal, {Delta("b25_alerting_incidents_opened_total"):F0} incidents opened; " +
                   $"unapplied backlog sampled every 0.5 s: max {maxBacklog:F0}, {atEnd:F0} at the last send, all applied {drain:F1} s after it " +
                   $"({handled / seconds:F0} notifications/s applied or recognised as known, first send to last applied); backlog over time (s: n): " +
                   string.Join(", ", samples.Where((_, i) => i % 4 == 0).Select(x => $"{x.At:F0}: {x.Backlog:F0}")) + postsText + ".");
        var ok = statuses.GetValueOrDefault(200) == latencies.Count;
        var keepsUp = backlog <= 0 && drain <= KeepUpSeconds;
        return new Outcome(
            $"{(keepsUp ? "keeps up" : "falls behind")}: all applied {drain:F1} s after the last send; accept {Stats.F(Stats.Percentile(latencies, 50))} / {Stats.F(Stats.Percentile(latencies, 99))} / {Stats.F(latencies[^1])} ms; backlog at most {maxBacklog:F0}{postsText}",
            !ok ? "**errors**, see notes" : keepsUp ? "met" : "**missed**");
    }

    private async Task<Outcome> MixAsync(ServiceCluster service)
    {
        var Next = MixBodies();
        var before = await MetricsAsync(service);
        var started = Stopwatch.GetTimestamp();
        var accepted = await ClosedLoopAsync(service, "2c (realistic mix: 5 % new, 15 % changes, 40 % repeats, 40 % copies)", Next);
        var seconds = Stats.Ms(started, Stopwatch.GetTimestamp()) / 1000;
        var after = await MetricsAsync(service);
        var opened = Counter(after, "b25_alerting_incidents_opened_total") - Counter(before, "b25_alerting_incidents_opened_total");
        var processed = Counter(after, "b25_alerting_notifications_processed_total") - Counter(before, "b25_alerting_notifications_processed_total");
        var received = Counter(after, "b25_alerting_notifications_received_total") - Counter(before, "b25_alerting_notifications_received_total");
        var duplicates = Counter(after, "b25_alerting_duplicates_dropped_total") - Counter(before, "b25_alerting_duplicates_dropped_total");
        _notes.Add($"2c (mix) over the whole phase (2 s warm, 15 s window, then the drain): {received:F0} accepted and journaled, {duplicates:F0} copies and repeats dropped at the journal (a repeat changes no alert's fingerprint, startsAt or status, which are the notification's identity), " +
                   $"{processed:F0} applied by the state machine, {opened:F0} incidents opened, in {seconds:F1} s from the first send to the last applied.");
        var applied = processed / seconds;
        return new Outcome($"{accepted.Measured} accepted; {applied:F0} applied/s, {opened / seconds:F0} opened/s (first send to last applied)",
            applied >= 1000 ? "met" : "**missed**");
    }

    private async Task<Outcome> ClosedLoopAsync(ServiceCluster service, string label, Func<int, byte[]> nextBody)
    {
        var sequence = 0;
        var warm = Seconds(2);
        var window = Seconds(15);
        var before = await MetricsAsync(service);
        var start = Stopwatch.GetTimestamp();
        var windowStart = start + (long)(warm.TotalSeconds * Stopwatch.Frequency);
        var end = windowStart + (long)(window.TotalSeconds * Stopwatch.Frequency);
        long ok = 0, failed = 0;
        var perSender = new List<double>[Senders];
        var workers = Enumerable.Range(0, Senders).Select(s => Task.Run(async () =>
        {
            var mine = perSender[s] = [];
            while (true)
            {
                var sendAt = Stopwatch.GetTimestamp();
                if (sendAt >= end) break;
                var status = await PostAsync(service, nextBody(Interlocked.Increment(ref sequence)));
                var done = Stopwatch.GetTimestamp();
                if (done < windowStart || done > end) continue;
                if (status == 200) { Interlocked.Increment(ref ok); mine.Add(Stats.Ms(sendAt, done)); }
                else Interlocked.Increment(ref failed);
            }
        })).ToArray();
        await Task.WhenAll(workers);
        var after = await MetricsAsync(service);
        var rate = ok / window.TotalSeconds;
        var latencies = perSender.SelectMany(l => l).ToList();
        var server = Histogram.Parse(after, "b25_alerting_accept_duration_seconds").Minus(Histogram.Parse(before, "b25_alerting_accept_duration_seconds"));
        var received = Counter(after, "b25_alerting_notifications_received_total") - Counter(before, "b25_alerting_notifications_received_total");
        var processedAtEnd = Counter(after, "b25_alerting_notifications_processed_total") - Counter(before, "b25_alerting_notifications_processed_total");
        // How long the incident state machine needs to catch up with what was accepted (bounded wait).
        var drainStart = Stopwatch.GetTimestamp();
        double processed = processedAtEnd;
        while (processed < received && Stats.Ms(drainStart, Stopwatch.GetTimestamp()) < 90_000)
        {
            await Task.Delay(500);
            processed = Counter(await MetricsAsync(service), "b25_alerting_notifications_processed_total") - Counter(before, "b25_alerting_notifications_processed_total");
        }
        var drainSeconds = Stats.Ms(drainStart, Stopwatch.GetTimestamp()) / 1000;
        var totalSeconds = Stats.Ms(start, Stopwatch.GetTimestamp()) / 1000;
        var duplicates = Counter(after, "b25_alerting_duplicates_dropped_total") - Counter(before, "b25_alerting_duplicates_dropped_total");
        _notes.Add($"{label}: {ok} answered 200 ({duplicates:F0} of all answered as duplicates) in the {window.TotalSeconds:F0} s window ({rate * 10:F0} alerts/s), {failed} failed; closed-loop request latency {Stats.Summary(latencies)}; server-side accept histogram {server.Describe()}. " +
                   $"The state machine had processed {processedAtEnd:F0} of {received:F0} accepted notifications when sending stopped and {processed:F0} after a further {drainSeconds:F1} s " +
                   $"(end-to-end processing rate about {processed / totalSeconds:F0} notifications/s, each a new incident with one Slack post).");
        return new Outcome($"{rate:F0} notifications/s", label.StartsWith("2b", StringComparison.Ordinal) ? "" : rate >= 1000 && failed == 0 ? "met" : "**missed**");
    }

    private async Task<Outcome> BigAsync(ServiceCluster service)
    {
        // Meanwhile, 10-alert notifications at 20/s: how much a big notification's processing delays other accepts.
        using var stop = new CancellationTokenSource();
        var background = new List<double>();
        var backgroundTask = Task.Run(async () =>
        {
            var tasks = new List<Task>();
            var next = Stopwatch.GetTimestamp();
            while (!stop.IsCancellationRequested)
            {
                var intended = next;
                var id = Interlocked.Increment(ref _nextId);
                tasks.Add(Task.Run(async () =>
                {
                    await PostAsync(service, Payloads.Notification(id, 10, (int)(id % Payloads.Channels)));
                    lock (background) background.Add(Stats.Ms(intended, Stopwatch.GetTimestamp()));
                }));
                next += Stopwatch.Frequency / 20;
                var wait = Stats.Ms(Stopwatch.GetTimestamp(), next);
                if (wait > 0) await Task.Delay(TimeSpan.FromMilliseconds(wait));
            }
            await Task.WhenAll(tasks);
        });

        var times = new List<double>();
        var toSlack = new List<double>();
        long size = 0;
        var statuses = new List<int>();
        var hwm = new List<long>();
        for (var run = 0; run < 3; run++)
        {
            var id = Interlocked.Increment(ref _nextId);
            var body = Payloads.Notification(id, BigAlerts, (int)(id % Payloads.Channels));
            size = body.Length;
            var rssBefore = service.RssMb;
            var sentAt = Stopwatch.GetTimestamp();
            statuses.Add(await PostAsync(service, body));
            times.Add(Stats.Ms(sentAt, Stopwatch.GetTimestamp()));
            var posted = await WaitForPostsAsync([id], TimeSpan.FromSeconds(120));
            toSlack.Add(posted == 1 ? Stats.Ms(sentAt, slack.FirstPostAt[id]) : double.NaN);
            hwm.Add(service.PeakRssMb);
            Console.Error.WriteLine($"  big run {run}: 200 after {times[^1]:F0} ms, Slack after {toSlack[^1]:F0} ms, RSS {rssBefore} -> {service.RssMb} MB (HWM {service.PeakRssMb})");
            await Task.Delay(1000);
        }
        await stop.CancelAsync();
        await backgroundTask;
        var worst = times.Max();
        _notes.Add($"3 (20,000 alerts, body {size / 1e6:F1} MB): time to 200 per run {string.Join(", ", times.Select(t => Stats.F(t, 0)))} ms (statuses {string.Join(",", statuses)}); " +
                   $"time to its Slack post {string.Join(", ", toSlack.Select(t => Stats.F(t, 0)))} ms; VmHWM after each run {string.Join(", ", hwm)} MB; 10-alert notifications sent at 20/s meanwhile: accept {Stats.Summary(background)}.");
        return new Outcome($"{worst / 1000:F2} s", worst <= 2000 && statuses.All(s => s == 200) ? "met" : "**missed**");
    }

    private async Task<Outcome> SlackLatencyAsync(ServiceCluster service)
    {
        var before = await MetricsAsync(service);
        var posts0 = slack.Posts;
        var (accept, statuses, sent) = await OpenLoopAsync(service, SlackRatePerSecond, Seconds(20), 10);
        var arrived = await WaitForPostsAsync(sent.Select(s => s.Id).ToList(), TimeSpan.FromSeconds(30));
        // Nothing else posts meanwhile: more chat.postMessage calls than incidents would be a page sent twice.
        await Task.Delay(TimeSpan.FromSeconds(1));
        var posts = slack.Posts - posts0;
        var after = await MetricsAsync(service);
        var latencies = sent.Where(s => slack.FirstPostAt.ContainsKey(s.Id)).Select(s => Stats.Ms(s.From, slack.FirstPostAt[s.Id])).ToList();
        latencies.Sort();
        var server = Histogram.Parse(after, "b25_alerting_delivery_latency_seconds", "channel=\"slack\"").Minus(Histogram.Parse(before, "b25_alerting_delivery_latency_seconds", "channel=\"slack\""));
        var serverAccept = Histogram.Parse(after, "b25_alerting_accept_duration_seconds").Minus(Histogram.Parse(before, "b25_alerting_accept_duration_seconds"));
        var missing = sent.Count - arrived;
        _notes.Add($"4 (to Slack): {Stats.Summary(latencies)}; {missing} of {sent.Count} never reached the stand-in within 30 s; chat.postMessage calls {posts} for {sent.Count} new incidents; accept {Stats.Summary(accept)} ({StatusText(statuses)}; server-side accept histogram {serverAccept.Describe()}); " +
                   $"server-side b25_alerting_delivery_latency_seconds{{channel=\"slack\"}} (accepted to marked sent) {server.Describe()}.");
        var p99 = Stats.Percentile(latencies, 99);
        return new Outcome($"{Stats.F(Stats.Percentile(latencies, 50))} / {Stats.F(p99)} / {Stats.F(latencies.Count == 0 ? double.NaN : latencies[^1])} ms",
            p99 <= 50 && missing == 0 ? "met" : "**missed**");
    }

    // ---- channels phase: every delivery channel against its stand-in ----

    /// <param name="Name">Phase name (also selectable alone with --phases).</param>
    /// <param name="Rate">New critical incidents per second (each one alert with action="emergency-stop").</param>
    /// <param name="Env">Service settings of this run on top of the channel settings.</param>
    /// <param name="Budget">How the PagerDuty budget is described in the report.</param>
    /// <param name="Drain">Longest wait, after sending stopped, for every delivery to reach its stand-in.</param>
    private sealed record ChannelRun(string Name, int Rate, Dictionary<string, string> Env, string Budget, TimeSpan Drain);

    private const int ChannelWarmUp = 20;

    private static readonly ChannelRun[] ChannelRuns =
    [
        new("channels-20", 20, new() { ["PagerDuty__EventsPerMinute"] = "6000", ["PagerDuty__Burst"] = "100" }, "6000/min, burst 100", TimeSpan.FromSeconds(60)),
        new("channels-50", 50, new() { ["PagerDuty__EventsPerMinute"] = "6000", ["PagerDuty__Burst"] = "100" }, "6000/min, burst 100", TimeSpan.FromSeconds(60)),
        // Past Slack's per-channel budget: each incident costs #trading-alerts-critical two calls (post + the stop's thread note).
        // 1,520 stops would pass the guard's 1000 per window, and a backlog drains in bursts of 300/s: a 1-s window keeps it from capping.
        new("channels-100", 100, new() { ["PagerDuty__EventsPerMinute"] = "6000", ["PagerDuty__Burst"] = "100", ["RiskManager__Window"] = "00:00:01" },
            "6000/min, burst 100", TimeSpan.FromSeconds(60)),
        // The shipped PagerDuty budget (120/min, burst 20 per routing key) is itself a limit: measured once as such.
        new("channels-pd-default", 20, new(), "shipped default 120/min, burst 20", TimeSpan.FromSeconds(30)),
    ];

    private readonly List<string> _channelRows = [];
    private readonly List<string> _channelNotes = [];

    private IReadOnlyList<IArrivals> ChannelArrivals() =>
        channels.RiskManager is { } rm ? [slack, channels.PagerDuty, channels.Smtp, rm] : [slack, channels.PagerDuty, channels.Smtp];

    private static byte[] CriticalNotification(long id) =>
        Payloads.Notification(id, 1, (int)(id % Payloads.Channels), severity: "critical", action: "emergency-stop");

    private string ChannelsMarkdown()
    {
        if (_channelRows.Count == 0) return "";
        var md = new StringBuilder();
        md.AppendLine("Channels (shipped routes; each notification one new incident of one critical alert with action=\"emergency-stop\", so one Slack post in " +
                      "#trading-alerts-critical, one PagerDuty trigger, one mail and one EmergencyStopRequested; accept = the client receiving the 200):");
        md.AppendLine();
        md.AppendLine("| run | channel | delivered | deliveries/s | accept -> stand-in p50 / p99 / max | not yet delivered when sending stopped |");
        md.AppendLine("|---|---|---|---|---|---|");
        foreach (var row in _channelRows) md.AppendLine(row);
        md.AppendLine();
        foreach (var note in _channelNotes) md.AppendLine(CultureInfo.InvariantCulture, $"- {note}");
        if (channels.RiskManager is null)
            md.AppendLine("- risk manager: not measured on this transport (the in-memory bus lives inside the service; the bench consumer needs RabbitMq).");
        return md.ToString();
    }

    private async Task<int> WaitForArrivalsAsync(IReadOnlyList<IArrivals> standIns, IReadOnlyCollection<long> ids, TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline)
        {
            if (standIns.All(s => ids.All(s.FirstAt.ContainsKey))) return ids.Count;
            await Task.Delay(50);
        }
        return ids.Count(id => standIns.All(s => s.FirstAt.ContainsKey(id)));
    }

    private static Dictionary<(string Channel, string Outcome), double> DeliveryCounts(string metrics)
    {
        var counts = new Dictionary<(string, string), double>();
        foreach (var line in metrics.Split('\n'))
        {
            if (!line.StartsWith("b25_alerting_deliveries_total{", StringComparison.Ordinal)) continue;
            var channel = LabelValue().Match(line) is { Success: true } c ? c.Groups[1].Value : "?";
            var outcome = OutcomeValue().Match(line) is { Success: true } o ? o.Groups[1].Value : "?";
            counts[(channel, outcome)] = double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
        }
        return counts;
    }

    [System.Text.RegularExpressions.GeneratedRegex("channel=\"([^\"]*)\"")]
    private static partial System.Text.RegularExpressions.Regex LabelValue();

    [System.Text.RegularExpressions.GeneratedRegex("outcome=\"([^\"]*)\"")]
    private static partial System.Text.RegularExpressions.Regex OutcomeValue();

    private async Task<Outcome> ChannelsAsync(ServiceCluster service, ChannelRun run)
    {
        var standIns = ChannelArrivals();

        // Channel warm-up (JIT of PagerDuty, MailKit, the risk-manager path): a few critical incidents, 2 at a time,
        // until each reached every stand-in; then an idle pause so the budgets are full again (PagerDuty's default
        // bucket earns its 20 tokens back in 10 s).
        var warmIds = new List<long>();
        var gate = new SemaphoreSlim(2);
        var warmTasks = new List<Task>();
        for (var i = 0; i < ChannelWarmUp; i++)
        {
            var id = Interlocked.Increment(ref _nextId);
            warmIds.Add(id);
            await gate.WaitAsync();
            warmTasks.Add(Task.Run(async () =>
            {
                try { await PostAsync(service, CriticalNotification(id)); }
                finally { gate.Release(); }
            }));
        }
        await Task.WhenAll(warmTasks);
        var warmed = await WaitForArrivalsAsync(standIns, warmIds, TimeSpan.FromSeconds(90));
        if (warmed < warmIds.Count)
            Console.Error.WriteLine($"  channel warm-up: only {warmed} of {warmIds.Count} reached every stand-in " +
                                    $"({string.Join(", ", standIns.Select(s => $"{s.Name} {warmIds.Count(s.FirstAt.ContainsKey)}"))})");
        await Task.Delay(TimeSpan.FromSeconds(11));

        var before = await MetricsAsync(service);
        var slackPosts0 = slack.Posts;
        var slackReplies0 = slack.Replies;
        var pdEvents0 = channels.PagerDuty.Events;
        var mails0 = channels.Smtp.Mails;
        var commands0 = channels.RiskManager?.Commands ?? 0;

        // /metrics once a second: the outbox's pending deliveries over time.
        using var stopSampling = new CancellationTokenSource();
        var pending = new List<(double At, double Pending)>();
        var t0 = Stopwatch.GetTimestamp();
        var sampler = Task.Run(async () =>
        {
            while (!stopSampling.IsCancellationRequested)
            {
                try
                {
                    var m = await MetricsAsync(service);
                    lock (pending) pending.Add((Stats.Ms(t0, Stopwatch.GetTimestamp()) / 1000, GaugeMax(m, "b25_alerting_pending_deliveries")));
                }
                catch (HttpRequestException) { }
                try { await Task.Delay(1000, stopSampling.Token); }
                catch (OperationCanceledException) { }
            }
        });

        // Open loop: new incidents at a fixed rate; each request's 200 is its accept time.
        var duration = Seconds(15);
        var count = (int)(run.Rate * duration.TotalSeconds);
        var sent = new (long Id, long From, long Accepted, int Status)[count];
        var tasks = new Task[count];
        var start = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 10;
        for (var i = 0; i < count; i++)
        {
            var intended = start + (long)(i * (double)Stopwatch.Frequency / run.Rate);
            var from = Stats.SleepUntil(intended);
            var id = Interlocked.Increment(ref _nextId);
            var index = i;
            tasks[i] = Task.Run(async () =>
            {
                var status = await PostAsync(service, CriticalNotification(id));
                sent[index] = (id, from, Stopwatch.GetTimestamp(), status);
            });
        }
        await Task.WhenAll(tasks);
        var sendEnd = Stopwatch.GetTimestamp();
        var atEnd = await MetricsAsync(service);
        var ok = sent.Where(s => s.Status == 200).ToList();
        var ids = ok.Select(s => s.Id).ToList();
        var behindAtEnd = standIns.ToDictionary(s => s.Name, s => ids.Count(id => !s.FirstAt.ContainsKey(id)));

        // Drain: until every accepted incident reached every stand-in, or the run's bound.
        await WaitForArrivalsAsync(standIns, ids, run.Drain);
        var drainSeconds = Stats.Ms(sendEnd, Stopwatch.GetTimestamp()) / 1000;
        await stopSampling.CancelAsync();
        await sampler;
        var after = await MetricsAsync(service);

        var firstAccept = ok.Count == 0 ? start : ok.Min(s => s.Accepted);
        var outcomes = new List<string>();
        foreach (var standIn in standIns)
        {
            var arrived = ok.Where(s => standIn.FirstAt.ContainsKey(s.Id)).Select(s => (s.Accepted, At: standIn.FirstAt[s.Id])).ToList();
            var latencies = arrived.Select(a => Stats.Ms(a.Accepted, a.At)).ToList();
            latencies.Sort();
            var span = arrived.Count == 0 ? double.NaN : Stats.Ms(firstAccept, arrived.Max(a => a.At)) / 1000;
            var rate = arrived.Count / span;
            var behind = behindAtEnd[standIn.Name];
            _channelRows.Add(string.Create(CultureInfo.InvariantCulture,
                $"| {run.Rate}/s x {duration.TotalSeconds:F0} s, PagerDuty {run.Budget} | {standIn.Name} | {arrived.Count} / {ok.Count} | {Stats.F(rate)} | " +
                $"{Stats.F(Stats.Percentile(latencies, 50))} / {Stats.F(Stats.Percentile(latencies, 99))} / {Stats.F(latencies.Count == 0 ? double.NaN : latencies[^1])} ms | " +
                $"{behind} ({behind * 100.0 / Math.Max(1, ok.Count):F0} %) |"));
            outcomes.Add($"{standIn.Name} {arrived.Count}/{ok.Count} p99 {Stats.F(Stats.Percentile(latencies, 99))} ms");
        }

        var d0 = DeliveryCounts(before);
        var d1 = DeliveryCounts(after);
        var byChannel = d1.Keys.Select(k => k.Channel).Distinct().Order(StringComparer.Ordinal).Select(channel =>
        {
            var parts = d1.Where(kv => kv.Key.Channel == channel).OrderBy(kv => kv.Key.Outcome, StringComparer.Ordinal)
                .Select(kv => (kv.Key.Outcome, Delta: kv.Value - d0.GetValueOrDefault(kv.Key))).Where(p => p.Delta > 0)
                .Select(p => $"{p.Outcome} {p.Delta:F0}");
            var server = Histogram.Parse(after, "b25_alerting_delivery_latency_seconds", $"channel=\"{channel}\"")
                .Minus(Histogram.Parse(before, "b25_alerting_delivery_latency_seconds", $"channel=\"{channel}\""));
            return $"{channel}: {string.Join(", ", parts)} (server-side accepted-to-sent {server.Describe()})";
        });
        double maxPending;
        string pendingSeries;
        lock (pending)
        {
            maxPending = pending.Count == 0 ? double.NaN : pending.Max(p => p.Pending);
            pendingSeries = string.Join(" ", pending.Where((_, i) => i % 3 == 0).Select(p => $"{p.At:F0}s:{p.Pending:F0}"));
        }
        var statuses = sent.GroupBy(s => s.Status).ToDictionary(g => g.Key, g => g.Count());
        var acceptMs = sent.Select(s => Stats.Ms(s.From, s.Accepted)).ToList();
        _channelNotes.Add($"{run.Name} ({run.Rate}/s, PagerDuty {run.Budget}): {ok.Count} of {count} answered 200 ({StatusText(statuses)}), intended send to 200 {Stats.Summary(acceptMs)}; " +
                          $"waited {drainSeconds:F1} s after sending stopped (bound {run.Drain.TotalSeconds:F0} s). " +
                          $"b25_alerting_deliveries_total deltas: {string.Join("; ", byChannel)}. " +
                          $"b25_alerting_pending_deliveries: {GaugeMax(atEnd, "b25_alerting_pending_deliveries"):F0} when sending stopped, max {maxPending:F0}, " +
                          $"{GaugeMax(after, "b25_alerting_pending_deliveries"):F0} at the end (every 3rd 1-s sample, seconds since start: {pendingSeries}). " +
                          $"Stand-in calls: Slack chat.postMessage {slack.Posts - slackPosts0} (of them thread replies/notes {slack.Replies - slackReplies0}), " +
                          $"PagerDuty events {channels.PagerDuty.Events - pdEvents0}, mails {channels.Smtp.Mails - mails0}" +
                          (channels.RiskManager is { } rm ? $", EmergencyStopRequested {rm.Commands - commands0}" : "") + ".");
        return new Outcome(string.Join("; ", outcomes), "");
    }
}

internal static class Machine
{
    public static string Describe(string commit)
    {
        var cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?";
        var memKb = File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        var load = File.ReadAllText("/proc/loadavg").Trim();
        return $"Machine: nproc {Environment.ProcessorCount}, CPU {cpu}, RAM {long.Parse(memKb, CultureInfo.InvariantCulture) / 1024 / 1024.0:F1} GiB, " +
               $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, service commit {commit}, load average at start {load} (cores shared with other work), .NET {Environment.Version}.";
    }
}

/// <summary>Child processes to stop when the bench is interrupted.</summary>
internal static class Cleanup
{
    private static readonly List<IDisposable> Children = [];

    public static void Add(IDisposable child) { lock (Children) Children.Add(child); }

    public static void Remove(IDisposable child) { lock (Children) Children.Remove(child); }

    public static void OnSignal(System.Runtime.InteropServices.PosixSignalContext context)
    {
        context.Cancel = true;
        Console.Error.WriteLine($"{context.Signal}: stopping the service and broker children");
        List<IDisposable> children;
        lock (Children) children = [.. Children];
        children.Reverse();
        foreach (var child in children)
        {
            try { child.Dispose(); }
            catch (Exception ex) when (ex is InvalidOperationException or IOException or System.ComponentModel.Win32Exception) { }
        }
        Environment.Exit(130);
    }
}
