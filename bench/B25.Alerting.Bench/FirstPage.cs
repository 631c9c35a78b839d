using System.Diagnostics;
using System.Globalization;
using System.Text;

using B25.Alerting.Bench;

/// <summary>
/// The <c>first-page</c> phase: what the first notification after a start pays. A fresh service per run (fresh
/// database), no bench warm-up: as soon as <c>/health/ready</c> answers 200, one new incident is sent and timed
/// from the send to the Slack stand-in receiving its <c>chat.postMessage</c>; then, one second apart, three more
/// new incidents show the warm cost on the same process.
/// </summary>
internal sealed partial class Bench
{
    private sealed record FirstPageRun(double ReadyMs, double FirstAcceptMs, double FirstPageMs, double ServerAcceptMs, double[] WarmPagesMs,
        double JitMethods, double JitMs);

    private async Task<string> FirstPageAsync()
    {
        var runs = new List<FirstPageRun>();
        for (var run = 1; run <= options.FirstPageRuns; run++)
        {
            var env = Environment("first-page");
            var started = Stopwatch.GetTimestamp();
            using var service = await ServiceCluster.StartAsync(serviceDll, workDir, $"{Run}-first-page-{run}", 1, _ => env, http);
            var ready = Stats.Ms(started, Stopwatch.GetTimestamp());
            var replica = service.Replicas[0];
            Console.Error.WriteLine($"[{Run}] first-page run {run}: service PID {replica.Pid} ready after {ready:F0} ms, log {replica.Log}");

            // The runtime's JIT counters around the first page: what it still compiled (tier-1 recompilations included).
            var before = await MetricsAsync(replica);
            // Diagnostic (--service-env DOTNET_JitDisasmSummary=1 --service-env DOTNET_JitStdOutFile=F): the runtime's list of
            // what it compiled during the first page goes to F.first-page-<run>.
            var jitFile = env.GetValueOrDefault("DOTNET_JitStdOutFile");
            var jitLinesBefore = jitFile is null ? 0 : File.ReadLines(jitFile).Count();
            var (accept, page) = await TimedPageAsync(service);
            var metrics = await MetricsAsync(replica);
            if (jitFile is not null)
                await File.WriteAllLinesAsync($"{jitFile}.first-page-{run}", File.ReadLines(jitFile).Skip(jitLinesBefore).ToList());
            const string methods = "system_runtime_dotnet_jit_compiled_methods", jitTime = "system_runtime_dotnet_jit_compilation_time";
            var jitMethods = GaugeMax(metrics, methods) - GaugeMax(before, methods);
            var jitMs = (GaugeMax(metrics, jitTime) - GaugeMax(before, jitTime)) * 1000;
            var serverAccept = Histogram.Parse(metrics, "b25_alerting_accept_duration_seconds").Sum * 1000;
            var warm = new List<double>();
            for (var i = 0; i < 3; i++)
            {
                await Task.Delay(1000);
                warm.Add((await TimedPageAsync(service)).Page);
            }
            runs.Add(new FirstPageRun(ready, accept, page, serverAccept, warm.ToArray(), jitMethods, jitMs));
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"[{Run}] first-page run {run}: first page {page:F1} ms (200 after {accept:F1} ms, server-side accept {serverAccept:F1} ms; JIT meanwhile {jitMethods:F0} methods, {jitMs:F0} ms); warm {string.Join(" / ", warm.Select(w => w.ToString("F1", CultureInfo.InvariantCulture)))} ms; load {Posix.Load1():F2}"));
        }

        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"#### First page after a start ({Title(transport, options.Storage, replicas)}, {runs.Count} fresh services)");
        md.AppendLine();
        md.AppendLine("| run | start to ready | first page: send to Slack stand-in | of which send to 200 (server-side accept) | JIT meanwhile (methods, time) | next 3 pages, 1 s apart |");
        md.AppendLine("|---|---:|---:|---:|---:|---|");
        for (var i = 0; i < runs.Count; i++)
        {
            var r = runs[i];
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {i + 1} | {r.ReadyMs:F0} ms | {r.FirstPageMs:F1} ms | {r.FirstAcceptMs:F1} ms ({r.ServerAcceptMs:F1} ms) | {r.JitMethods:F0}, {r.JitMs:F0} ms | {string.Join(" / ", r.WarmPagesMs.Select(w => w.ToString("F1", CultureInfo.InvariantCulture)))} ms |");
        }
        var first = runs.Select(r => r.FirstPageMs).ToList();
        var warmAll = runs.SelectMany(r => r.WarmPagesMs).ToList();
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"First page: {Stats.Summary(first)}; warm pages: {Stats.Summary(warmAll)}; load average at the end {File.ReadAllText("/proc/loadavg").Trim()}.");
        md.AppendLine();
        return md.ToString();
    }

    /// <summary>One new incident: milliseconds from the send to the 200, and to the stand-in receiving its chat.postMessage.</summary>
    private async Task<(double Accept, double Page)> TimedPageAsync(ServiceCluster service)
    {
        var id = Interlocked.Increment(ref _nextId);
        var body = Payloads.Notification(id, 10, (int)(id % Payloads.Channels));
        var sent = Stopwatch.GetTimestamp();
        var status = await PostAsync(service, body);
        var accepted = Stopwatch.GetTimestamp();
        if (status != 200) throw new InvalidOperationException($"first-page: the webhook answered {status}");
        if (await WaitForPostsAsync([id], TimeSpan.FromSeconds(30)) != 1) throw new TimeoutException("first-page: no chat.postMessage within 30 s");
        return (Stats.Ms(sent, accepted), Stats.Ms(sent, slack.FirstPostAt[id]));
    }
}
