using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace B25.FaultSuite;

/// <summary>
/// dotnet run -c Release --project tests/B25.FaultSuite -- --scale full|ci [--set single|replicas] [--only scenario[,scenario]] [--no-report]
/// Runs storms of alert groups against the real service under faults (one process on SQLite, and replicas sharing
/// PostgreSQL and RabbitMQ), checks what Slack, PagerDuty, the incidents API and the journal show afterwards, prints a
/// table per set and writes each set that ran whole into docs/reliability.md under its own heading.
/// Exit code 1 when any check failed, 2 on bad arguments.
/// </summary>
internal static partial class Program
{
    private static readonly Stopwatch Clock = Stopwatch.StartNew();

    public static async Task<int> Main(string[] args)
    {
        string? scaleName = null, only = null, set = null;
        var writeReport = true;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--scale" when i + 1 < args.Length: scaleName = args[++i]; break;
                case "--only" when i + 1 < args.Length: only = args[++i]; break;
                case "--set" when i + 1 < args.Length && args[i + 1] is "single" or "replicas": set = args[++i]; break;
                case "--no-report": writeReport = false; break;
                default:
                    Console.Error.WriteLine($"unknown argument {args[i]}");
                    return Usage();
            }
        }
        var scale = scaleName switch { "ci" => Scale.Ci, "full" => Scale.Full, _ => null };
        if (scale is null) return Usage();
        // Every scenario is known to --only; a whole run takes the scale's own (ci runs a subset of the replica scenarios).
        var known = Scenarios.All(scale).Concat(Cluster.All(scale)).ToList();
        var scenarios = known.Where(s => (scale != Scale.Ci || s.InCi) && set switch { "single" => !s.Cluster, "replicas" => s.Cluster, _ => true }).ToList();
        if (only is not null)
        {
            var names = only.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var unknown = names.Where(n => known.All(s => s.Name != n)).ToList();
            if (unknown.Count > 0)
            {
                Console.Error.WriteLine($"unknown scenario(s): {string.Join(", ", unknown)}; known: {string.Join(", ", known.Select(s => s.Name))}");
                return 2;
            }
            scenarios = known.Where(s => names.Contains(s.Name)).ToList();
        }
        if (!File.Exists(ServiceHost.Dll))
        {
            Console.Error.WriteLine($"{ServiceHost.Dll} is missing: build the suite (it references src/B25.Alerting)");
            return 2;
        }

        Console.CancelKeyPress += (_, e) => { Cleanup.RunAll(); };
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Cleanup.RunAll();
        // Stop what the suite started, then end: the scenario loop would otherwise go on against stopped servers.
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ =>
        {
            Cleanup.RunAll();
            Environment.Exit(143);
        });

        var workRoot = Path.Combine(Path.GetTempPath(), $"b25-faults-{DateTime.UtcNow:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(workRoot);
        Say($"fault suite, scale {scale.Name}: {string.Join(", ", scenarios.Select(s => s.Name))}; work folder {workRoot}");
        var started = DateTime.UtcNow;
        var results = new List<ScenarioResult>();
        foreach (var scenario in scenarios)
        {
            var dir = Path.Combine(workRoot, scenario.Name);
            var result = scenario.Cluster ? await Cluster.RunAsync(scenario, scale, dir, Clock, Say) : await RunAsync(scenario, scale, dir);
            results.Add(result);
            var failed = result.FailedChecks();
            Say($"[{scenario.Name}] {(result.Skipped ? "SKIPPED" : failed.Count == 0 ? "PASS" : "FAIL: " + string.Join(", ", failed))} " +
                $"({result.Duration.TotalSeconds:0} s, {result.FaultTotal} faults)");
        }
        var total = DateTime.UtcNow - started;

        Console.WriteLine();
        if (results.Any(r => r.Replicas == 0)) Console.WriteLine(Table(results.Where(r => r.Replicas == 0)));
        if (results.Any(r => r.Replicas > 0)) Console.WriteLine(ClusterTable(results.Where(r => r.Replicas > 0)));
        var anyFailed = results.Any(r => r.FailedChecks().Count > 0);
        Say($"{results.Sum(r => r.FaultTotal)} faults injected in {total.TotalMinutes:0.0} min; {(anyFailed ? "SOME CHECKS FAILED" : "every check passed")}");
        if (writeReport && only is null)
        {
            var single = results.Where(r => r.Replicas == 0).ToList();
            var cluster = results.Where(r => r.Replicas > 0).ToList();
            if (single.Count > 0) WriteReport(scale, single, $"faults:{scale.Name}", $"## Scale `{scale.Name}`", "--scale " + scale.Name + (set is null ? "" : " --set single"), Table);
            if (cluster.Count > 0) WriteReport(scale, cluster, $"faults:replicas-{scale.Name}", $"### Replicas, scale `{scale.Name}`", "--scale " + scale.Name + (set is null ? "" : " --set replicas"), ClusterTable);
        }
        else if (writeReport) Say("--only: docs/reliability.md not written (it holds whole runs)");
        Cleanup.RunAll();
        // A failed run keeps its folder (the replicas' logs and databases): the evidence of what went wrong.
        if (anyFailed) Say($"work folder kept for the failed checks: {workRoot}");
        else if (Environment.GetEnvironmentVariable("B25_FAULTS_KEEP") is null)
        {
            try { Directory.Delete(workRoot, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        return anyFailed ? 1 : 0;
    }

    private static int Usage()
    {
        Console.Error.WriteLine("usage: dotnet run -c Release --project tests/B25.FaultSuite -- --scale full|ci [--set single|replicas] [--only <scenario>[,<scenario>]] [--no-report]");
        return 2;
    }

    private static void Say(string line) => Console.WriteLine($"{DateTime.UtcNow:HH:mm:ss} {line}");

    private static async Task<ScenarioResult> RunAsync(Scenario scenario, Scale scale, string dir)
    {
        var result = new ScenarioResult { Name = scenario.Name };
        var watch = Stopwatch.StartNew();
        void Progress(string line) => Say($"[{scenario.Name}] {line}");
        if (scenario.NeedsRoot && !Posix.IsRoot)
        {
            result.Skipped = true;
            result.Notes.Add("skipped: mounting a tmpfs needs root");
            Progress("skipped: mounting a tmpfs needs root");
            return result;
        }
        if (scenario.NeedsRabbit && !RabbitNode.Installed)
        {
            result.Error = "rabbitmq-server is not installed (apt-get install -y --no-install-recommends rabbitmq-server)";
            Progress(result.Error);
            return result;
        }
        Directory.CreateDirectory(dir);
        Progress(scenario.Description);
        var faults = new FaultCounter();
        SlackStandIn? slack = null;
        PagerDutyStandIn? pagerDuty = null;
        RabbitNode? rabbit = null;
        TmpfsMount? disk = null;
        ServiceHost? service = null;
        try
        {
            slack = Scenarios.Slack(Clock, faults);
            pagerDuty = new PagerDutyStandIn { Clock = Clock, Counter = faults };
            if (scenario.NeedsRabbit)
            {
                rabbit = new RabbitNode(dir);
                Cleanup.Add(rabbit.Dispose);
                if (!scenario.StartWithBrokerDown)
                {
                    Progress("starting RabbitMQ");
                    await rabbit.StartAsync();
                }
            }
            var databaseDir = dir;
            if (scenario.NeedsRoot)
            {
                disk = await TmpfsMount.MountAsync(Path.Combine(dir, "disk"), sizeMb: 48);
                databaseDir = disk.Path;
            }
            var database = Path.Combine(databaseDir, "alerting.db");
            service = new ServiceHost(dir, Scenarios.ServiceSettings(database, slack, pagerDuty, rabbit));
            Cleanup.Add(service.Dispose);
            Progress($"starting the service ({(rabbit is null ? "InMemory" : "RabbitMq")}{(scenario.StartWithBrokerDown ? ", broker down" : "")})");
            await service.StartAsync(ready: !scenario.StartWithBrokerDown);
            if (scenario.StartWithBrokerDown) faults.Add("broker down at service start");

            var (count, spread) = scenario.Size(scale);
            var groups = Storm.Build(Guid.NewGuid().ToString("N")[..6], count);
            result.Groups = groups.Count;
            var stats = new StormStats();
            var context = new ScenarioContext
            {
                WorkDir = dir, Service = service, Slack = slack, PagerDuty = pagerDuty, Faults = faults, Scale = scale,
                Progress = Progress, Result = result, Stats = stats, Rabbit = rabbit, Disk = disk, Database = database,
            };
            slack.Faults = scenario.Slack ?? VendorFaults.None;
            pagerDuty.Faults = scenario.PagerDuty ?? VendorFaults.None;

            using var stormDone = new CancellationTokenSource();
            using var abort = new CancellationTokenSource();
            Progress($"storm: {groups.Count} groups, {groups.Sum(g => g.Bodies.Count)} notifications x {Storm.Copies} copies over {spread.TotalSeconds:0} s");
            // Alertmanager retries forever; the suite gives the storm its length plus an overrun, then counts what is still unanswered.
            abort.CancelAfter(spread + scale.StormOverrun);
            var storm = Storm.RunAsync(groups, service.BaseUrl, spread, scale.MaxStepPause, stats, abort.Token);
            var injector = scenario.Inject(context, stormDone.Token);
            var progress = Task.Run(async () =>
            {
                while (!storm.IsCompleted)
                {
                    await Task.WhenAny(storm, Task.Delay(TimeSpan.FromSeconds(10)));
                    if (!storm.IsCompleted)
                        Progress($"storm: {stats.Answered2xx}/{stats.Notifications * Storm.Copies} copies answered 2xx, {stats.Retried} retried, {faults.Total} faults so far");
                }
            });
            // The storm may not outlive the injector by much: if injecting failed, stop posting too.
            var first = await Task.WhenAny(storm, injector);
            if (first == injector && injector.IsFaulted)
            {
                abort.Cancel();
                await injector;
            }
            try { await storm; }
            catch (OperationCanceledException)
            {
                Progress($"storm stopped after {(spread + scale.StormOverrun).TotalSeconds:0} s with notifications still unanswered");
            }
            stormDone.Cancel();
            await injector;
            await progress;
            slack.Faults = VendorFaults.None;
            pagerDuty.Faults = VendorFaults.None;
            result.Notifications = stats.Notifications;
            result.Posts = stats.Posts;
            result.Rejected4xx = stats.Rejected4xx;
            result.Unanswered = (int)(stats.Notifications - stats.Accepted - stats.Dropped);
            Progress($"storm done: {stats.Answered2xx} copies answered 2xx ({stats.Posts} POSTs, {stats.Retried} retried, {stats.Rejected4xx} 4xx); waiting for the service to settle");

            if (!service.Running) await service.StartAsync();
            result.Quiescent = await Scenarios.WaitQuiescentAsync(context, groups.Count);
            await Scenarios.CheckAsync(context, groups, database);
        }
        catch (Exception ex)
        {
            result.Error = $"{ex.GetType().Name}: {ex.Message}";
            Progress($"error: {ex}");
        }
        finally
        {
            result.Faults = faults.Snapshot();
            service?.Dispose();
            if (service is not null && result.FailedChecks().Count > 0)
                Progress($"service log: {service.Log} (kept when a check fails, or with B25_FAULTS_KEEP=1)");
            rabbit?.Dispose();
            disk?.Dispose();
            if (slack is not null) await slack.DisposeAsync();
            if (pagerDuty is not null) await pagerDuty.DisposeAsync();
            result.Duration = watch.Elapsed;
        }
        return result;
    }

    private static string Table(IEnumerable<ScenarioResult> results)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| scenario | groups | notifications | faults injected | lost | extra top-level posts | extra thread replies | left firing | unapplied | unanswered | PagerDuty wrong | extra PagerDuty pages | Retry-After violations | max calls/channel in 1 s | first page after accept p50 / p99 / max (not a check) | duration | result |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            var faults = r.Faults.Count == 0 ? "0" :
                $"**{r.FaultTotal}**: " + string.Join(", ", r.Faults.OrderByDescending(f => f.Value).Select(f => $"{f.Key} {f.Value}"));
            var failed = r.FailedChecks();
            var verdict = r.Skipped ? "skipped" : failed.Count == 0 ? "pass" : "**FAIL** (" + string.Join(", ", failed) + ")";
            var notes = r.Notes.Count + (r.Error is null ? 0 : 1) == 0 ? "" : "; " + string.Join("; ", r.Notes.Concat(r.Error is null ? [] : [r.Error]));
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Name} | {r.Groups} | {r.Notifications} | {faults} | {r.Lost} | {r.ExtraTopLevel} | {r.ExtraReplies} | {r.LeftFiring} | {r.Unapplied} | {r.Unanswered} | {r.PagerDutyWrong} | {r.PagerDutyExtraPages} | {r.RetryAfterViolations} | {r.MaxPerChannelPerSecond} | {r.FirstPage} | {r.Duration.TotalSeconds:0} s | {verdict}{notes.Replace("|", "/")} |");
        }
        return sb.ToString();
    }

    /// <summary>The replica scenarios' table: the same checks, plus copies per replica, PagerDuty deduplication and the known Slack window.</summary>
    private static string ClusterTable(IEnumerable<ScenarioResult> results)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| scenario | replicas | groups | notifications | faults injected | lost | extra top-level posts | extra thread replies | left firing | unapplied | unanswered notifications / copies | PagerDuty wrong | extra PagerDuty pages (triggers PagerDuty deduplicated) | Retry-After violations | max calls/channel in 1 s | known Slack window (not a check) | first page after accept p50 / p99 / max (not a check) | duration | result |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            var faults = r.Faults.Count == 0 ? "0" :
                $"**{r.FaultTotal}**: " + string.Join(", ", r.Faults.OrderByDescending(f => f.Value).Select(f => $"{f.Key} {f.Value}"));
            var failed = r.FailedChecks();
            var verdict = r.Skipped ? "skipped" : failed.Count == 0 ? "pass" : "**FAIL** (" + string.Join(", ", failed) + ")";
            var notes = r.Notes.Count + (r.Error is null ? 0 : 1) == 0 ? "" : "; " + string.Join("; ", r.Notes.Concat(r.Error is null ? [] : [r.Error]));
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Name} | {r.Replicas} | {r.Groups} | {r.Notifications} | {faults} | {r.Lost} | {r.ExtraTopLevel} | {r.ExtraReplies} | {r.LeftFiring} | {r.Unapplied} | {r.Unanswered} / {r.CopiesUnanswered} | {r.PagerDutyWrong} | {r.PagerDutyExtraPages} ({r.PagerDutyDeduplicated}) | {r.RetryAfterViolations} | {r.MaxPerChannelPerSecond} | {r.Window} | {r.FirstPage} | {r.Duration.TotalSeconds:0} s | {verdict}{notes.Replace("|", "/")} |");
        }
        return sb.ToString();
    }

    private static void WriteReport(Scale scale, List<ScenarioResult> results, string marker, string heading, string arguments,
        Func<IEnumerable<ScenarioResult>, string> table)
    {
        var total = results.Aggregate(TimeSpan.Zero, (sum, r) => sum + r.Duration);
        var root = RepositoryRoot();
        if (root is null)
        {
            Say("repository root not found: docs/reliability.md not written");
            return;
        }
        var path = Path.Combine(root, "docs", "reliability.md");
        var commit = Git(root, "rev-parse", "--short", "HEAD");
        var dirty = Git(root, "status", "--porcelain", "--untracked-files=no").Length > 0 ? " (with uncommitted changes)" : "";
        var section = new StringBuilder();
        section.AppendLine($"<!-- {marker}:begin -->");
        section.AppendLine(heading);
        section.AppendLine();
        section.AppendLine($"Command: `dotnet run -c Release --project tests/B25.FaultSuite -- {arguments}`. " +
                           $"Run {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {total.TotalMinutes:0.0} min in all, **{results.Sum(r => r.FaultTotal)} faults injected**, " +
                           $"service commit `{commit}`{dirty}.");
        section.AppendLine();
        section.AppendLine($"Machine: nproc {Environment.ProcessorCount}, {MemoryGiB()} GiB RAM, {OsName()}, kernel {Environment.OSVersion.Version}, " +
                           $"{RuntimeInformation.FrameworkDescription}, load average at the end {LoadAverage()}.");
        section.AppendLine();
        section.Append(table(results));
        var failing = results.Where(r => r.FailedChecks().Count > 0).Select(r => $"{r.Name} ({string.Join(", ", r.FailedChecks())})").ToList();
        section.AppendLine();
        section.AppendLine(failing.Count == 0 ? "Every check passed." : $"Failed checks: {string.Join("; ", failing)}.");
        section.AppendLine($"<!-- {marker}:end -->");

        var text = File.Exists(path) ? File.ReadAllText(path) : "# Reliability under faults\n";
        var pattern = new Regex($@"<!-- {marker}:begin -->.*?<!-- {marker}:end -->\n?", RegexOptions.Singleline);
        text = pattern.IsMatch(text) ? pattern.Replace(text, section.ToString().Replace("$", "$$")) : text.TrimEnd('\n') + "\n\n" + section;
        File.WriteAllText(path, text);
        Say($"results written to {path}");
    }

    private static string? RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "B25.Alerting.sln"))) return dir.FullName;
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "B25.Alerting.sln"))) return dir.FullName;
        return null;
    }

    private static string Git(string root, params string[] args)
    {
        var (code, output) = Posix.RunAsync("git", ["-C", root, .. args], TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
        return code == 0 ? output : "unknown";
    }

    private static string MemoryGiB()
    {
        var line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
        return line is null ? "?" : (long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0 / 1024).ToString("0.0", CultureInfo.InvariantCulture);
    }

    private static string OsName()
    {
        if (!File.Exists("/etc/os-release")) return RuntimeInformation.OSDescription;
        var line = File.ReadLines("/etc/os-release").FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal));
        return line?["PRETTY_NAME=".Length..].Trim('"') ?? RuntimeInformation.OSDescription;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";
}
