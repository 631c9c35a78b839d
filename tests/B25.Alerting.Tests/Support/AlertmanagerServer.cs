using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

namespace B25.Alerting.Tests.Support;

/// <summary>
/// A real Alertmanager (Debian's prometheus-alertmanager) on 127.0.0.1 and a free port, no cluster, sending every
/// notification to <see cref="WebhookUrl"/> with short group timings, started for a test class and stopped after it.
/// </summary>
public sealed class AlertmanagerServer : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"b25-am-{Guid.NewGuid():N}");
    private readonly StringBuilder _log = new();
    private Process? _server;

    /// <summary>Where Alertmanager sends its notifications (a stand-in the test reads).</summary>
    public WireMock.Server.WireMockServer Receiver { get; } =
        WireMock.Server.WireMockServer.Start(new WireMock.Settings.WireMockServerSettings { Urls = ["http://127.0.0.1:0"] });

    public int Port { get; private set; }

    public string Url => $"http://127.0.0.1:{Port}";

    public string Log
    {
        get { lock (_log) return _log.ToString(); }
    }

    public async Task InitializeAsync()
    {
        var binary = File.Exists("/usr/bin/prometheus-alertmanager") ? "/usr/bin/prometheus-alertmanager" : null;
        if (binary is null)
            throw new InvalidOperationException(
                "prometheus-alertmanager is missing: install Debian's prometheus-alertmanager (tests/run-all.sh does it) to run the silence tests.");
        Receiver.Given(WireMock.RequestBuilders.Request.Create().UsingPost())
            .RespondWith(WireMock.ResponseBuilders.Response.Create().WithStatusCode(200));
        Directory.CreateDirectory(Path.Combine(_dir, "data"));
        var config = Path.Combine(_dir, "alertmanager.yml");
        await File.WriteAllTextAsync(config, $"""
            route:
              receiver: test
              group_by: ['alertname', 'service']
              group_wait: 1s
              group_interval: 1s
              repeat_interval: 2s
            receivers:
              - name: test
                webhook_configs:
                  - url: {Receiver.Urls[0]}/hook
                    send_resolved: true
            """);
        Port = ServiceProcess.FreePort();
        var info = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[]
                 {
                     $"--config.file={config}", $"--storage.path={Path.Combine(_dir, "data")}", "--cluster.listen-address=",
                     $"--web.listen-address=127.0.0.1:{Port}", $"--web.external-url={Url}", "--log.level=warn",
                 })
            info.ArgumentList.Add(arg);
        _server = Process.Start(info) ?? throw new InvalidOperationException("could not start prometheus-alertmanager");
        _server.OutputDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _server.ErrorDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _server.BeginOutputReadLine();
        _server.BeginErrorReadLine();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (_server.HasExited) throw new InvalidOperationException($"prometheus-alertmanager exited while starting:\n{Log}");
            try
            {
                if ((await http.GetAsync($"{Url}/-/ready")).IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(50);
        }
        throw new TimeoutException($"prometheus-alertmanager was not ready within 60 s:\n{Log}");
    }

    /// <summary>Posts firing alerts to Alertmanager's API, as Prometheus would.</summary>
    public async Task FireAsync(params Dictionary<string, string>[] labels)
    {
        using var http = new HttpClient();
        var body = new JsonArray(labels.Select(l => (JsonNode)new JsonObject
        {
            ["labels"] = new JsonObject(l.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["startsAt"] = DateTimeOffset.UtcNow.AddMinutes(-1).ToString("O"),
            ["endsAt"] = DateTimeOffset.UtcNow.AddMinutes(10).ToString("O"),
        }).ToArray());
        (await http.PostAsync($"{Url}/api/v2/alerts", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"))).EnsureSuccessStatusCode();
    }

    public async Task<JsonArray> SilencesAsync()
    {
        using var http = new HttpClient();
        return (await http.GetFromJsonAsync<JsonArray>($"{Url}/api/v2/silences"))!;
    }

    public async Task<JsonArray> AlertsAsync()
    {
        using var http = new HttpClient();
        return (await http.GetFromJsonAsync<JsonArray>($"{Url}/api/v2/alerts"))!;
    }

    /// <summary>The notifications Alertmanager sent for alerts with this alertname.</summary>
    public int NotificationsFor(string alertname) =>
        Receiver.LogEntries.Count(e => e.RequestMessage.Body?.Contains($"\"alertname\":\"{alertname}\"", StringComparison.Ordinal) == true);

    public async Task DisposeAsync()
    {
        Receiver.Stop();
        if (_server is { HasExited: false } server)
        {
            server.Kill(entireProcessTree: true);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await server.WaitForExitAsync(timeout.Token);
        }
        _server?.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
