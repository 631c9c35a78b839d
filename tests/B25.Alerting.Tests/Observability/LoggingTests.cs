using System.Text.Json;
using System.Text.RegularExpressions;
using B25.Alerting.Observability;
using B25.Alerting.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Tests.Observability;

/// <summary>Console logs: compact JSON in production (what Promtail reads), readable by hand, chosen by the standard settings.</summary>
public sealed partial class LoggingTests
{
    private static string RepoFile(params string[] parts)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "B25.Alerting.sln"))) dir = dir.Parent;
        return Path.Combine([dir!.FullName, .. parts]);
    }

    private static JsonElement Format(LogLevel level, string message, Exception? exception = null)
    {
        var formatter = new CompactJsonConsoleFormatter(new StaticOptions());
        var state = new List<KeyValuePair<string, object?>> { new("Channel", "#trading-alerts"), new("Count", 3), new("{OriginalFormat}", "x") };
        using var writer = new StringWriter();
        formatter.Write(new LogEntry<List<KeyValuePair<string, object?>>>(level, "B25.Test", new EventId(42), state, exception, (_, _) => message), null, writer);
        var text = writer.ToString();
        Assert.EndsWith("\n", text);
        Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    [Fact]
    public void A_line_is_one_compact_json_object_with_the_message_once()
    {
        var line = Format(LogLevel.Warning, "Alertmanager's <b25-critical> & \"friends\"", new InvalidOperationException("boom\nsecond line"));
        Assert.Equal("Warning", line.GetProperty("@l").GetString());
        Assert.Equal("Alertmanager's <b25-critical> & \"friends\"", line.GetProperty("@m").GetString());
        Assert.Equal(42, line.GetProperty("@i").GetInt32());
        Assert.Equal("#trading-alerts", line.GetProperty("Channel").GetString());
        Assert.Equal(3, line.GetProperty("Count").GetInt32());
        Assert.Contains("boom", line.GetProperty("@x").GetString());
        Assert.False(line.TryGetProperty("{OriginalFormat}", out _));
        Assert.True(DateTimeOffset.TryParse(line.GetProperty("@t").GetString(), out _));
        var raw = line.GetRawText();
        Assert.DoesNotContain("\\u0027", raw);
        Assert.Single(Regex.Matches(raw, "friends"));
    }

    [Fact]
    public void A_line_written_inside_a_span_carries_its_trace_and_span_id()
    {
        using var activity = new System.Diagnostics.Activity("webhook").Start();
        var line = Format(LogLevel.Information, "inside");
        Assert.Equal(activity.TraceId.ToHexString(), line.GetProperty("@tr").GetString());
        Assert.Equal(activity.SpanId.ToHexString(), line.GetProperty("@sp").GetString());
    }

    /// <summary>
    /// compose/promtail/promtail-config.yml takes the level from `level` or `@l` and maps it to Loki's level label;
    /// Loki:Levels (the service's own log context) and the "warnings and errors" panels select on that label.
    /// If either side is renamed, this fails.
    /// </summary>
    [Fact]
    public void Promtail_reads_the_level_time_and_trace_fields_the_service_writes()
    {
        var promtail = File.ReadAllText(RepoFile("compose", "promtail", "promtail-config.yml"));
        Fields(promtail, "level").ShouldContain(CompactJsonConsoleFormatter.LevelField);
        Fields(promtail, "timestamp").ShouldContain(CompactJsonConsoleFormatter.TimeField);
        Fields(promtail, "trace_id").ShouldContain(CompactJsonConsoleFormatter.TraceField);

        // The template stage: ToLower, then named replacements; anything else passes through lowered.
        var mapping = new Dictionary<string, string>();
        foreach (Match branch in TemplateBranch().Matches(promtail))
            foreach (Match from in Regex.Matches(branch.Groups["cond"].Value, "eq \\$l \"(?<from>[^\"]*)\""))
                mapping[from.Groups["from"].Value] = branch.Groups["to"].Value;
        Assert.NotEmpty(mapping);
        string Loki(LogLevel level)
        {
            var written = Format(level, "m").GetProperty("@l").GetString()!.ToLowerInvariant();
            return mapping.TryGetValue(written, out var to) ? to : written;
        }
        Assert.Equal("info", Loki(LogLevel.Information));
        Assert.Equal("warn", Loki(LogLevel.Warning));
        Assert.Equal("error", Loki(LogLevel.Error));
        Assert.Equal("fatal", Loki(LogLevel.Critical));
        Assert.Equal("debug", Loki(LogLevel.Debug));
        Assert.Matches(@"(?m)^\s*-\s*labels:\s*\n\s*level:", promtail);

        // The service's log context asks Loki for these levels on the label Promtail sets.
        var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "appsettings.json"))).RootElement.GetProperty("Loki");
        Assert.Equal("level", settings.GetProperty("LevelLabel").GetString());
        var levels = settings.GetProperty("Levels").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.All(levels, l => Assert.Contains(l, new[] { Loki(LogLevel.Warning), Loki(LogLevel.Error), Loki(LogLevel.Critical) }));
    }

    [Theory]
    [InlineData(null, null, true)]
    [InlineData("Development", null, false)]
    [InlineData(null, "simple", false)]
    [InlineData("Development", "compact", true)]
    public async Task The_format_follows_the_environment_and_Logging_Console_FormatterName(string? environment, string? formatter, bool json)
    {
        var settings = new Dictionary<string, string> { ["Bus__Transport"] = "Kafka" };
        if (environment is not null) settings["ASPNETCORE_ENVIRONMENT"] = environment;
        if (formatter is not null) settings["Logging__Console__FormatterName"] = formatter;
        using var slack = new SlackStandIn();
        var (exitCode, output) = await ServiceProcess.RunToExitAsync(ServiceProcess.Settings(Path.Combine(Path.GetTempPath(), "unused.db"), slack, settings));

        Assert.Equal(1, exitCode);
        var line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.Contains("Bus:Transport=Kafka", line);
        if (json)
            Assert.Equal("Critical", JsonDocument.Parse(line).RootElement.GetProperty("@l").GetString());
        else
            Assert.StartsWith("crit", line.Split(' ', 2)[1]);
    }

    private static List<string> Fields(string promtail, string name)
    {
        var expression = Regex.Match(promtail, $@"(?m)^\s*{Regex.Escape(name)}:\s*'([^']*)'");
        Assert.True(expression.Success, $"promtail's json stage has no {name} expression");
        return expression.Groups[1].Value.Split("||").Select(f => f.Trim().Trim('"')).ToList();
    }

    [GeneratedRegex("""\{\{ (?:else )?if (?<cond>[^}]*)\}\}(?<to>[a-z]+)(?=\{\{)""")]
    private static partial Regex TemplateBranch();

    private sealed class StaticOptions : IOptionsMonitor<ConsoleFormatterOptions>
    {
        public ConsoleFormatterOptions CurrentValue { get; } = new();
        public ConsoleFormatterOptions Get(string? name) => CurrentValue;
        public IDisposable? OnChange(Action<ConsoleFormatterOptions, string?> listener) => null;
    }
}

internal static class ListAssertions
{
    public static void ShouldContain(this List<string> fields, string field) =>
        Assert.True(fields.Contains(field), $"promtail reads [{string.Join(", ", fields)}], the service writes {field}");
}
