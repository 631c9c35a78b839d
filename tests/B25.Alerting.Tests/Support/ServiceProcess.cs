using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace B25.Alerting.Tests.Support;

/// <summary>The service as a real OS process (the build output next to the tests), to kill -9 and restart.</summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ServiceProcess(Process process, string baseUrl)
    {
        _process = process;
        BaseUrl = baseUrl;
    }

    public string BaseUrl { get; }

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    /// <summary>The settings every process-level test uses: token, SQLite file, Slack stand-in, quiet logs; plus its own.</summary>
    public static Dictionary<string, string> Settings(string database, SlackStandIn slack, IDictionary<string, string>? extra = null)
    {
        var settings = new Dictionary<string, string>
        {
            ["Webhook__BearerToken"] = AlertingFactory.Token,
            ["Storage__ConnectionString"] = $"Data Source={database}",
            ["Slack__BotToken"] = "xoxb-test",
            ["Slack__ApiBaseUrl"] = slack.ApiBaseUrl,
            ["Logging__LogLevel__Default"] = "Warning",
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string>()) settings[key] = value;
        return settings;
    }

    /// <summary>The same, on the stores' database (SQLite or PostgreSQL).</summary>
    public static Dictionary<string, string> Settings(TestStores stores, SlackStandIn slack, IDictionary<string, string>? extra = null)
    {
        var settings = Settings("unused", slack, extra);
        foreach (var (key, value) in stores.Settings) settings[key.Replace(":", "__")] = value!;
        foreach (var (key, value) in extra ?? new Dictionary<string, string>()) settings[key] = value;
        return settings;
    }

    /// <summary>
    /// Starts the service on a free port, or on ASPNETCORE_URLS when the environment gives it (no --urls then). A free port
    /// can be taken between the look and the service's bind (as the source port of some other test's connection): then the
    /// service exits saying so, and it is started again on another free port.
    /// </summary>
    public static async Task<ServiceProcess> StartAsync(IDictionary<string, string> environment, string? workingDirectory = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await StartOnceAsync(environment, workingDirectory);
            }
            catch (PortTakenException) when (attempt < 3 && !environment.ContainsKey("ASPNETCORE_URLS"))
            {
            }
        }
    }

    private sealed class PortTakenException(string message) : InvalidOperationException(message);

    private static async Task<ServiceProcess> StartOnceAsync(IDictionary<string, string> environment, string? workingDirectory)
    {
        var baseUrl = environment.TryGetValue("ASPNETCORE_URLS", out var urls) ? urls : $"http://127.0.0.1:{FreePort()}";
        var info = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { Path.Combine(AppContext.BaseDirectory, "B25.Alerting.dll") },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (urls is null) { info.ArgumentList.Add("--urls"); info.ArgumentList.Add(baseUrl); }
        if (workingDirectory is not null) info.WorkingDirectory = workingDirectory;
        foreach (var (key, value) in environment) info.Environment[key] = value;
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start the service");
        var service = new ServiceProcess(process, baseUrl);
        process.OutputDataReceived += (_, e) => { lock (service._output) service._output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (service._output) service._output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                process.WaitForExit(); // the rest of the redirected output
                var message = $"the service exited with {process.ExitCode}:\n{service.Output}";
                throw service.Output.Contains("address already in use", StringComparison.Ordinal)
                    ? new PortTakenException(message)
                    : new InvalidOperationException(message);
            }
            try
            {
                if ((await http.GetAsync($"{service.BaseUrl}/health/ready")).StatusCode == HttpStatusCode.OK) return service;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(100);
        }
        await service.DisposeAsync();
        throw new TimeoutException($"the service did not become ready:\n{service.Output}");
    }

    /// <summary>
    /// Starts the service expecting it to exit by itself (a refused start); its exit code and output. On a free port (no
    /// <paramref name="urls"/>), a start refused because that port was taken meanwhile (see <see cref="StartAsync"/>) is run
    /// again on another.
    /// </summary>
    public static async Task<(int ExitCode, string Output)> RunToExitAsync(IDictionary<string, string> environment, int timeoutMs = 30_000, string? urls = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            var (exitCode, output) = await RunToExitOnceAsync(environment, timeoutMs, urls);
            if (urls is not null || attempt == 3 || !output.Contains("Cannot listen:", StringComparison.Ordinal)
                || !output.Contains("address already in use", StringComparison.Ordinal))
                return (exitCode, output);
        }
    }

    private static async Task<(int ExitCode, string Output)> RunToExitOnceAsync(IDictionary<string, string> environment, int timeoutMs, string? urls)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { Path.Combine(AppContext.BaseDirectory, "B25.Alerting.dll"), "--urls", urls ?? $"http://127.0.0.1:{FreePort()}" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (key, value) in environment) info.Environment[key] = value;
        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start the service");
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var timeout = new CancellationTokenSource(timeoutMs);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            lock (output) throw new TimeoutException($"the service did not exit within {timeoutMs} ms:\n{output}");
        }
        process.WaitForExit(); // the rest of the redirected output
        lock (output) return (process.ExitCode, output.ToString());
    }

    /// <summary>SIGKILL: no shutdown hooks, no flush, as in a crash.</summary>
    public async Task KillAsync()
    {
        if (_process.HasExited) return;
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process.Dispose();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
