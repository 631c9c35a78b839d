using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace B25.Alerting.Tests.Support;

/// <summary>
/// A throwaway Prometheus (Debian's prometheus package, 2.42 here) on 127.0.0.1 and a free port, holding known
/// data: <see cref="OpenMetrics"/> writes samples ending at <see cref="Now"/>, <c>promtool tsdb
/// create-blocks-from openmetrics</c> turns them into TSDB blocks in a temp folder, and Prometheus is started on
/// that folder with a config that scrapes nothing. So the last hour is there at once and exactly as written,
/// which a scraped exporter could give neither (an hour of waiting, and values at the mercy of scrape timing).
/// Queries then end at <see cref="Now"/> (give the code under test a clock fixed there): Prometheus answers
/// range queries over backfilled blocks whatever its own clock says, and 15 days of default retention keep them.
/// Subclass and override <see cref="OpenMetrics"/> to choose the data; share it with an xunit collection fixture.
/// The server's PID is kept; DisposeAsync kills it, waits for it and removes the folder.
/// </summary>
public class PrometheusServer : IAsyncLifetime
{
    private const int MaxLogLines = 200;

    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"b25-prom-{Guid.NewGuid():N}");
    private readonly Queue<string> _log = new();
    private Process? _server;

    public PrometheusServer()
    {
        // Whole minutes, a minute back: every sample is in the past for Prometheus too.
        var now = DateTimeOffset.UtcNow;
        Now = new DateTimeOffset(now.Ticks - now.Ticks % TimeSpan.TicksPerMinute, TimeSpan.Zero).AddMinutes(-1);
    }

    /// <summary>The end of the data: the "now" of the tests.</summary>
    public DateTimeOffset Now { get; }

    public int Port { get; private set; }

    public string Url => $"http://127.0.0.1:{Port}";

    public int? ProcessId => _server is { HasExited: false } server ? server.Id : null;

    public string Log
    {
        get { lock (_log) return string.Join('\n', _log); }
    }

    /// <summary>
    /// The samples to load, in OpenMetrics text (each series' samples in time order, timestamps in unix seconds,
    /// ending with <c># EOF</c>); empty for none.
    /// </summary>
    protected virtual string OpenMetrics(DateTimeOffset now) => "";

    public async Task InitializeAsync()
    {
        var prometheus = Which("prometheus");
        var promtool = Which("promtool");
        if (prometheus is null || promtool is null)
            throw new InvalidOperationException(
                "prometheus or promtool is missing: install Debian's prometheus (apt-get install -y --no-install-recommends prometheus; tests/run-all.sh does it) to run the tests against a real Prometheus.");
        try
        {
            Directory.CreateDirectory(Path.Combine(_dir, "data"));
            var config = Path.Combine(_dir, "prometheus.yml");
            await File.WriteAllTextAsync(config, "global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n");
            var samples = OpenMetrics(Now);
            if (samples.Length > 0)
            {
                var input = Path.Combine(_dir, "samples.om");
                await File.WriteAllTextAsync(input, samples);
                await RunAsync(promtool, ["tsdb", "create-blocks-from", "openmetrics", "--quiet", input, Path.Combine(_dir, "data")]);
            }
            // A free port can be taken between the probe and the bind: try a few.
            for (var attempt = 1; ; attempt++)
            {
                Port = ServiceProcess.FreePort();
                try
                {
                    await StartAsync(prometheus, config);
                    break;
                }
                catch (InvalidOperationException) when (attempt < 3 && Log.Contains("address already in use", StringComparison.Ordinal))
                {
                }
            }
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    /// <summary>query_range requests Prometheus has answered since it started (its own prometheus_http_requests_total).</summary>
    public async Task<double> QueryRangeRequestsAsync()
    {
        using var http = new HttpClient();
        var text = await http.GetStringAsync($"{Url}/metrics");
        return Regex.Matches(text, @"^prometheus_http_requests_total\{(?=[^}]*handler=""/api/v1/query_range"")[^}]*\} ([0-9.eE+-]+)$", RegexOptions.Multiline)
            .Sum(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
    }

    public async Task DisposeAsync()
    {
        try
        {
            if (_server is { HasExited: false } server)
            {
                server.Kill(entireProcessTree: true);
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await server.WaitForExitAsync(timeout.Token);
            }
        }
        finally
        {
            _server?.Dispose();
            _server = null;
            try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private async Task StartAsync(string prometheus, string config)
    {
        var info = new ProcessStartInfo(prometheus)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = _dir,
        };
        foreach (var arg in new[]
                 {
                     $"--config.file={config}", $"--storage.tsdb.path={Path.Combine(_dir, "data")}",
                     $"--web.listen-address=127.0.0.1:{Port}", $"--web.external-url=http://127.0.0.1:{Port}",
                     "--storage.tsdb.retention.time=15d", "--log.level=warn",
                 })
            info.ArgumentList.Add(arg);
        var server = Process.Start(info) ?? throw new InvalidOperationException("could not start prometheus");
        server.OutputDataReceived += (_, e) => Append(e.Data);
        server.ErrorDataReceived += (_, e) => Append(e.Data);
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        _server = server;

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (server.HasExited)
            {
                await server.WaitForExitAsync();
                _server = null;
                server.Dispose();
                throw new InvalidOperationException($"prometheus exited while starting:\n{Log}");
            }
            try
            {
                using var ready = await http.GetAsync($"{Url}/-/ready");
                if (ready.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(50);
        }
        throw new TimeoutException($"prometheus was not ready within 60 s:\n{Log}");
    }

    private async Task RunAsync(string file, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _dir };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"{file} {string.Join(' ', info.ArgumentList)} took more than 2 minutes");
        }
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', info.ArgumentList)} exited with {process.ExitCode}:\n{await output}\n{await error}");
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_log)
        {
            _log.Enqueue(line);
            while (_log.Count > MaxLogLines) _log.Dequeue();
        }
    }

    private static string? Which(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':')
        .Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);

    /// <summary>OpenMetrics text for one series: <c>name{labels} value timestamp</c> per sample.</summary>
    public static void AppendSeries(StringBuilder text, string name, string labels, IEnumerable<(DateTimeOffset Time, double Value)> samples)
    {
        foreach (var (time, value) in samples)
        {
            var v = double.IsNaN(value) ? "NaN" : double.IsPositiveInfinity(value) ? "+Inf" : double.IsNegativeInfinity(value) ? "-Inf"
                : value.ToString("R", CultureInfo.InvariantCulture);
            text.Append(name).Append('{').Append(labels).Append("} ").Append(v).Append(' ')
                .Append(time.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
    }
}
