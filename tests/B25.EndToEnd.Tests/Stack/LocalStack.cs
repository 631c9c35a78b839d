using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;

namespace B25.EndToEnd.Tests.Stack;

/// <summary>
/// The whole alert path on this machine, from real binaries: B25.Simulator (the seven services'
/// /metrics), Prometheus and Alertmanager (Debian packages) with the repository's configuration,
/// B25.Alerting, and a Slack stand-in. Everything binds to 127.0.0.1 on free ports and lives in a
/// temporary folder that is removed afterwards.
/// </summary>
internal sealed class LocalStack : IAsyncDisposable
{
    public const string WebhookToken = "e2e-webhook-token";
    public const string SlackBotToken = "xoxb-test";

    private readonly List<ManagedProcess> _processes = [];

    private LocalStack(string directory) => Directory = directory;

    public string Directory { get; }

    public SlackStandIn Slack { get; } = new() { AnswersAuthTest = true };

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(10) };

    public int ControlPort { get; private set; }

    public int PrometheusPort { get; private set; }

    public int AlertmanagerPort { get; private set; }

    public int AlertingPort { get; private set; }

    public string PrometheusUrl => $"http://127.0.0.1:{PrometheusPort}";

    public string AlertmanagerUrl => $"http://127.0.0.1:{AlertmanagerPort}";

    public string AlertingUrl => $"http://127.0.0.1:{AlertingPort}";

    public string ControlUrl => $"http://127.0.0.1:{ControlPort}";

    public IReadOnlyList<string> Jobs { get; private set; } = [];

    public IReadOnlyDictionary<string, int> ServicePorts { get; private set; } = new Dictionary<string, int>();

    public static async Task<LocalStack> StartAsync(Action<string> log)
    {
        var stack = new LocalStack(System.IO.Directory.CreateTempSubdirectory("b25-e2e-").FullName);
        try
        {
            await stack.StartAllAsync(log);
            return stack;
        }
        catch
        {
            var diagnostics = stack.Diagnostics();
            await stack.DisposeAsync();
            throw new InvalidOperationException("the local stack did not start\n" + diagnostics);
        }
    }

    /// <summary>The tail of every server's log, for a failure message.</summary>
    public string Diagnostics() => string.Join("\n", _processes.Select(p => p.Tail()));

    public async Task<JsonElement> QueryAsync(string promql)
    {
        var answer = await Http.GetFromJsonAsync<JsonElement>($"{PrometheusUrl}/api/v1/query?query={Uri.EscapeDataString(promql)}");
        return answer.GetProperty("data").GetProperty("result");
    }

    public async Task SetFaultAsync(string service, string fault, bool on)
    {
        var response = on
            ? await Http.PostAsync($"{ControlUrl}/faults/{service}/{fault}", null)
            : await Http.DeleteAsync($"{ControlUrl}/faults/{service}/{fault}");
        response.EnsureSuccessStatusCode();
    }

    public async ValueTask DisposeAsync()
    {
        // Stop in reverse order of start, each by its own PID, and wait for it.
        for (var i = _processes.Count - 1; i >= 0; i--)
        {
            await _processes[i].DisposeAsync();
        }

        await Slack.DisposeAsync();
        Http.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task StartAllAsync(Action<string> log)
    {
        var started = Stopwatch.StartNew();
        foreach (var binary in new[] { "prometheus", AlertmanagerBinary(), "bash", "curl" })
        {
            if (!OnPath(binary))
            {
                throw new InvalidOperationException(
                    $"{binary} is not installed: apt-get install -y --no-install-recommends prometheus prometheus-alertmanager curl (tests/run-all.sh does it)");
            }
        }

        ControlPort = FreePort.Next();
        PrometheusPort = FreePort.Next();
        AlertmanagerPort = FreePort.Next();
        AlertingPort = FreePort.Next();

        // The simulator picks its seven service ports itself (PortBase=0) and lists them on its control API.
        var simulator = Start("simulator", "dotnet",
        [
            Repository.ServiceDll("B25.Simulator"),
            "--Simulator:PortBase=0", $"--Simulator:ControlPort={ControlPort}", "--Simulator:TickInterval=00:00:00.200",
        ]);
        var tokenFile = Path.Combine(Directory, "b25-alerting-token");
        await File.WriteAllTextAsync(tokenFile, WebhookToken);
        Start("b25-alerting", "dotnet", [Repository.ServiceDll("B25.Alerting"), "--urls", AlertingUrl], new Dictionary<string, string>
        {
            ["Webhook__BearerToken"] = WebhookToken,
            ["Slack__BotToken"] = SlackBotToken,
            ["Slack__ApiBaseUrl"] = Slack.ApiBaseUrl,
            ["Storage__ConnectionString"] = $"Data Source={Path.Combine(Directory, "alerting.db")}",
            ["Bus__Transport"] = "InMemory",
            // The enrichment stage queries the stack's Prometheus: pages carry the series' value and the rule's threshold.
            ["Prometheus__Url"] = PrometheusUrl,
            // A window this run fills (step 1 s, 3 s a character): the sparkline, min and max show the series before and
            // after the fault, which pages within seconds of the stack's start.
            ["Enrichment__Window"] = "00:01:00",
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
        });

        var amDir = System.IO.Directory.CreateDirectory(Path.Combine(Directory, "alertmanager")).FullName;
        StackConfig.WriteAlertmanager(amDir, AlertingPort, tokenFile, Slack);
        Start("alertmanager", AlertmanagerBinary(),
        [
            $"--config.file={Path.Combine(amDir, "alertmanager.yml")}", $"--storage.path={Path.Combine(amDir, "data")}",
            "--cluster.listen-address=", $"--web.listen-address=127.0.0.1:{AlertmanagerPort}", $"--web.external-url={AlertmanagerUrl}",
        ]);

        var services = await WaitForAsync("simulator control API", async () =>
        {
            var list = await Http.GetFromJsonAsync<JsonElement>($"{ControlUrl}/services");
            return list.EnumerateArray().All(s => s.GetProperty("listening").GetBoolean()) ? list : (JsonElement?)null;
        }, simulator);
        ServicePorts = services!.Value.EnumerateArray().ToDictionary(s => s.GetProperty("service").GetString()!, s => s.GetProperty("port").GetInt32());

        // Before Prometheus starts: with every `for:` shortened, a service still starting looks down
        // long enough to fire AlertingServiceDown (a real `for: 1m` outlasts a start by far).
        await WaitForAsync("B25.Alerting ready", async () => (await Http.GetAsync($"{AlertingUrl}/health/ready")).IsSuccessStatusCode ? true : (bool?)null, _processes[1]);

        var promDir = System.IO.Directory.CreateDirectory(Path.Combine(Directory, "prometheus")).FullName;
        Jobs = StackConfig.WritePrometheus(promDir, PrometheusPort, AlertmanagerPort, AlertingPort, ServicePorts);
        var prometheus = Start("prometheus", "prometheus",
        [
            $"--config.file={Path.Combine(promDir, "prometheus.yml")}", $"--storage.tsdb.path={Path.Combine(promDir, "data")}",
            "--rules.alert.resend-delay=1s", $"--web.listen-address=127.0.0.1:{PrometheusPort}", $"--web.external-url={PrometheusUrl}",
        ]);

        await WaitForAsync("Prometheus ready", async () => (await Http.GetAsync($"{PrometheusUrl}/-/ready")).IsSuccessStatusCode ? true : (bool?)null, prometheus);
        await WaitForAsync("Alertmanager ready", async () => (await Http.GetAsync($"{AlertmanagerUrl}/-/ready")).IsSuccessStatusCode ? true : (bool?)null, _processes[2]);
        await WaitForAsync("B25.Alerting ready", async () => (await Http.GetAsync($"{AlertingUrl}/health/ready")).IsSuccessStatusCode ? true : (bool?)null, _processes[1]);
        log($"stack started in {started.Elapsed.TotalSeconds:0.0} s in {Directory}: prometheus :{PrometheusPort}, alertmanager :{AlertmanagerPort}, " +
            $"b25-alerting :{AlertingPort}, simulator control :{ControlPort}, slack stand-in :{Slack.Port}; jobs {string.Join(", ", Jobs)}");
    }

    private ManagedProcess Start(string name, string fileName, string[] arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var process = ManagedProcess.Start(name, fileName, arguments, Directory, environment);
        _processes.Add(process);
        return process;
    }

    /// <summary>Polls until <paramref name="probe"/> returns a value; fails early if the server died.</summary>
    private static async Task<T> WaitForAsync<T>(string what, Func<Task<T?>> probe, ManagedProcess process, int seconds = 60)
    {
        var deadline = Stopwatch.StartNew();
        Exception? last = null;
        while (deadline.Elapsed < TimeSpan.FromSeconds(seconds))
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"{process.Name} exited while waiting for {what}\n{process.Tail()}");
            }

            try
            {
                var value = await probe();
                if (value is not null)
                {
                    return value;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException)
            {
                last = ex;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"{what}: not within {seconds} s ({last?.Message})\n{process.Tail()}");
    }

    private static bool OnPath(string binary) =>
        Path.IsPathRooted(binary)
            ? File.Exists(binary)
            : (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Any(dir => File.Exists(Path.Combine(dir, binary)));

    private static string AlertmanagerBinary() =>
        File.Exists("/usr/bin/prometheus-alertmanager") ? "/usr/bin/prometheus-alertmanager" : "alertmanager";
}
