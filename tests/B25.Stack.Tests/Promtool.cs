using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace B25.Stack.Tests;

/// <summary>Runs Prometheus' promtool. Missing promtool is a failure, never a skip.</summary>
internal static partial class Promtool
{
    public static string Path()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(System.IO.Path.PathSeparator))
        {
            if (dir.Length == 0) continue;
            var candidate = System.IO.Path.Combine(dir, "promtool");
            if (File.Exists(candidate)) return candidate;
        }
        Assert.Fail("promtool is not installed, so the PromQL of the dashboards cannot be checked. "
                    + "Install it (Debian: apt-get install -y --no-install-recommends prometheus) "
                    + "or run tests/run-all.sh, which does.");
        throw new UnreachableException();
    }

    public static (int ExitCode, string Output) Run(params string[] args)
    {
        var start = new ProcessStartInfo(Path())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("promtool did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill();
            Assert.Fail("promtool did not finish within 2 minutes");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>
    /// Parses every expression with one `promtool check rules` call (each expression becomes a
    /// recording rule) and returns the parse errors by expression index.
    /// </summary>
    public static IReadOnlyDictionary<int, string> ParseErrors(IReadOnlyList<string> expressions)
    {
        var file = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"b25-stack-tests-{Guid.NewGuid():N}.rules.yml");
        var yaml = new StringBuilder("groups:\n  - name: dashboard_queries\n    rules:\n");
        for (var i = 0; i < expressions.Count; i++)
        {
            // A YAML double-quoted scalar: escape backslashes and quotes, keep it on one line.
            var escaped = expressions[i].Replace("\\", "\\\\").Replace("\"", "\\\"")
                .Replace("\r", " ").Replace("\n", " ").Replace("\t", " ");
            yaml.Append($"      - record: dashboard_query_{i}\n        expr: \"{escaped}\"\n");
        }
        File.WriteAllText(file, yaml.ToString());
        try
        {
            var (exitCode, output) = Run("check", "rules", file);
            var errors = new Dictionary<int, string>();
            foreach (Match m in RuleError().Matches(output))
            {
                errors[int.Parse(m.Groups["i"].Value)] = m.Groups["msg"].Value.Trim();
            }
            if (exitCode != 0 && errors.Count == 0)
            {
                Assert.Fail($"promtool check rules failed without a per-rule error:\n{output}");
            }
            return errors;
        }
        finally
        {
            File.Delete(file);
        }
    }

    [GeneratedRegex(@"""dashboard_query_(?<i>\d+)"":\s*(?<msg>.*)")]
    private static partial Regex RuleError();
}
