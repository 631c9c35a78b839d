using System.Diagnostics;
using System.Globalization;
using System.Text;
using B25.EndToEnd.Tests.Stack;

namespace B25.EndToEnd.Tests;

/// <summary>
/// The end-to-end figures as the e2e block of docs/benchmarks.md. The test always prints it; it
/// rewrites the block only when B25_E2E_WRITE_BENCHMARKS=1, so CI runs leave the docs alone.
/// </summary>
internal static class BenchmarkReport
{
    public const string Command = "B25_E2E_WRITE_BENCHMARKS=1 B25_E2E_REPEAT=3 dotnet test tests/B25.EndToEnd.Tests -c Release";
    private const string Begin = "<!-- e2e:begin -->";
    private const string End = "<!-- e2e:end -->";

    public static string Render(IReadOnlyList<Round> rounds, TimeSpan total)
    {
        var c = CultureInfo.InvariantCulture;
        var added = rounds.Select(r => r.AddedLatency).Order().ToArray();
        var s = new StringBuilder();
        s.AppendLine("## End to end: fault to Slack page");
        s.AppendLine();
        s.AppendLine(c, $"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC on {Machine()}, Linux {Run("uname", ["-r"]).Trim()}; {Version("prometheus")}, {Version(AlertmanagerBinary())}, .NET {Environment.Version}.");
        s.AppendLine(c, $"Command: `{Command}` (also runs, without writing this file, in `tests/run-all.sh`).");
        s.AppendLine();
        s.AppendLine("Path: B25.Simulator fault switch -> Prometheus scrape (1 s) and rule evaluation (1 s, the repository's rules with");
        s.AppendLine(c, $"every `for:` divided by {StackConfig.ForDivisor}, e.g. ServiceDown 1m -> 2s, WebSocketDisconnected 30s -> 1s; `--rules.alert.resend-delay=1s`) -> Alertmanager (the");
        s.AppendLine("repository's routes, group_wait and group_interval 1 s, emergency-stop route 0 s) -> B25.Alerting (SQLite journal, in-memory bus)");
        s.AppendLine("-> Slack stand-in. The baseline is Alertmanager's own `slack_configs`, added to the same receivers, so it leaves in the same");
        s.AppendLine("notification as the webhook to B25.Alerting: the difference is what B25.Alerting adds. Times run from the fault switch (or its");
        s.AppendLine("clearing) to the request's arrival at the stand-in; each row is one sample (B25_E2E_REPEAT repeats the page-and-resolve rounds).");
        s.AppendLine();
        s.AppendLine("| fault | alert | receiver, channel | page via B25.Alerting | page via Alertmanager | added by B25.Alerting | resolved via B25.Alerting | resolved via Alertmanager |");
        s.AppendLine("|---|---|---|---:|---:|---:|---:|---:|");
        foreach (var r in rounds)
        {
            s.AppendLine(c, $"| {r.Service} {r.Fault} | {r.Alert} | {r.Receiver}, {r.Channel} | {r.PageAlerting:0.00} s | {r.PageAlertmanager:0.00} s | {r.AddedLatency * 1000:0} ms | {Opt(r.ResolveAlerting)} | {Opt(r.ResolveAlertmanager)} |");
        }

        s.AppendLine();
        var addedOnResolve = rounds.Where(r => r.ResolveAlerting is not null).Select(r => r.ResolveAlerting!.Value - r.ResolveAlertmanager!.Value).Order().ToArray();
        s.AppendLine(c, $"Added latency over {added.Length} pages: median {Median(added) * 1000:0} ms, max {added[^1] * 1000:0} ms; over {addedOnResolve.Length} resolutions: median {Median(addedOnResolve) * 1000:0} ms, max {addedOnResolve[^1] * 1000:0} ms.");
        s.AppendLine(c, $"Whole test for the rounds above, start of the stack included: {total.TotalSeconds:0} s (CI runs them once: about 50 s).");
        s.AppendLine("The first page of a run also pays B25.Alerting's cold path (JIT, first Slack connection); the rows after it show the warm cost.");
        s.AppendLine("Most of the time to page is the alerting pipeline's own waits (scrape, evaluation, `for`, group_wait), which production runs with");
        s.AppendLine("the repository's full durations: add them (ServiceDown: `for: 1m` + group_wait 10s) to read production figures.");
        return s.ToString();
    }

    public static void WriteIfAsked(string report, Action<string> log)
    {
        if (Environment.GetEnvironmentVariable("B25_E2E_WRITE_BENCHMARKS") != "1")
        {
            log("docs/benchmarks.md left as it is (set B25_E2E_WRITE_BENCHMARKS=1 to rewrite its e2e block)");
            return;
        }

        var path = Repository.PathOf("docs", "benchmarks.md");
        var text = File.ReadAllText(path);
        var begin = text.IndexOf(Begin, StringComparison.Ordinal);
        var end = text.IndexOf(End, StringComparison.Ordinal);
        Assert.True(begin >= 0 && end > begin, $"{path} lacks the {Begin} ... {End} markers");
        File.WriteAllText(path, text[..(begin + Begin.Length)] + "\n" + report + text[end..]);
        log($"wrote the e2e block of {path}");
    }

    private static string Opt(double? seconds) => seconds is { } v ? v.ToString("0.00 's'", CultureInfo.InvariantCulture) : "not cleared";

    private static double Median(double[] sorted) =>
        sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;

    private static string Machine()
    {
        var model = "unknown CPU";
        try
        {
            model = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? model;
        }
        catch (IOException)
        {
        }

        return $"{model}, nproc {Run("nproc", []).Trim()}";
    }

    private static string Version(string binary)
    {
        var first = Run(binary, ["--version"]).Split('\n')[0];
        var version = first.Split(' ').SkipWhile(w => w != "version").Skip(1).FirstOrDefault();
        return $"{Path.GetFileName(binary)} {version ?? "(version unknown)"}";
    }

    private static string Run(string binary, string[] arguments)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(binary, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var stderr = process.StandardError.ReadToEndAsync();
            var text = process.StandardOutput.ReadToEnd() + stderr.GetAwaiter().GetResult();
            process.WaitForExit(5000);
            return text;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return string.Empty;
        }
    }

    private static string AlertmanagerBinary() =>
        File.Exists("/usr/bin/prometheus-alertmanager") ? "/usr/bin/prometheus-alertmanager" : "alertmanager";
}
