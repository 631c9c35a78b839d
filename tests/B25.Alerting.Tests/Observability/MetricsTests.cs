using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using B25.Alerting.Tests.Support;
using Microsoft.Data.Sqlite;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.Observability;

/// <summary>What /metrics says about the service itself.</summary>
public sealed class MetricsTests : IDisposable
{
    private readonly SlackStandIn _slack = new();
    private readonly string _db = Path.Combine(Path.GetTempPath(), $"b25-metrics-{Guid.NewGuid():N}.db");

    public void Dispose()
    {
        _slack.Dispose();
        SqliteConnection.ClearAllPools();
        foreach (var suffix in new[] { "", "-wal", "-shm", ".lock" }) File.Delete(_db + suffix);
    }

    private static string RepoFile(params string[] parts)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "B25.Alerting.sln"))) dir = dir.Parent;
        return Path.Combine([dir!.FullName, .. parts]);
    }

    /// <summary>The labels prometheus/metrics-contract.yaml gives a metric (flow list on its `labels:` line).</summary>
    private static string[] ContractLabels(string metric)
    {
        var contract = File.ReadAllText(RepoFile("prometheus", "metrics-contract.yaml"));
        var item = Regex.Match(contract, $@"- name: {Regex.Escape(metric)}\s*\n(?:\s+\w+:.*\n)*?\s+labels:\s*\[([^\]]*)\]");
        Assert.True(item.Success, $"{metric} is not in the metrics contract");
        return item.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    private static string[] LabelsOf(string metrics, string series) =>
        Regex.Matches(metrics, $@"^{Regex.Escape(series)}\{{([^}}]*)\}}", RegexOptions.Multiline)
            .SelectMany(m => Regex.Matches(m.Groups[1].Value, @"(\w+)=""").Select(l => l.Groups[1].Value))
            .Where(l => l != "le").Distinct().Order().ToArray();

    [Fact]
    public async Task HTTP_requests_are_counted_as_the_contract_and_HighErrorRate_expect()
    {
        using var factory = new AlertingFactory(_slack);
        var client = factory.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health/live")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/api/incidents/no-such-incident")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json("{}"))).StatusCode);

        var metrics = await client.GetStringAsync("/metrics");

        Assert.Equal(ContractLabels("http_requests_total").Order(), LabelsOf(metrics, "http_requests_total"));
        Assert.Equal(ContractLabels("http_request_duration_seconds").Order(), LabelsOf(metrics, "http_request_duration_seconds_bucket"));
        Assert.Contains("""http_requests_total{method="GET",route="/health/live",status="200"}""", metrics);
        // The route template, not the path: one series however many incidents are looked up.
        Assert.Contains("""http_requests_total{method="GET",route="/api/incidents/{id}",status="404"}""", metrics);
        Assert.Contains("""http_requests_total{method="POST",route="/webhooks/alertmanager",status="401"}""", metrics);
        // The recording rule behind HighErrorRate selects status=~"5..": the label holds the bare code.
        var recording = File.ReadAllText(RepoFile("prometheus", "rules", "recording.yml"));
        Assert.Contains("""http_requests_total{status=~"5.."}""", recording);
        Assert.DoesNotContain("http_requests_received_total", metrics);
    }

    [Fact]
    public async Task Build_info_is_exposed_and_private_runtime_gauges_are_not()
    {
        using var factory = new AlertingFactory(_slack);
        var metrics = await factory.CreateClient().GetStringAsync("/metrics");

        Assert.Matches("""(?m)^b25_alerting_build_info\{version="[^"]+",revision="[^"]+",runtime="\.NET [^"]+"\} 1$""", metrics);
        Assert.DoesNotContain("private_internaldiagnostics", metrics, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Of_the_dotnet_meters_only_the_runtime_is_exported()
    {
        using var factory = new AlertingFactory(_slack);
        var client = factory.Authorized();
        // Requests, a message over the bus and an outbound call: ASP.NET Core's, Kestrel's, MassTransit's and HttpClient's meters
        // all publish instruments.
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Body("g-meters", Firing("m1"))))).StatusCode);
        await Eventually.True(() => _slack.Posts.Count == 1, "posted");

        // The adapter listens to the runtime's instruments and to no other (each one it listens to costs a lookup per measurement).
        var runtime = 0;
        using (var listener = new System.Diagnostics.Metrics.MeterListener())
        {
            listener.InstrumentPublished = (instrument, _) => { if (instrument.Meter.Name == "System.Runtime") runtime++; };
            listener.Start();
        }
        Assert.True(runtime > 0);
        Assert.Equal(runtime, await MetricsText.ReadAsync(client, "prometheus_net_meteradapter_instruments_connected"));
        Assert.Contains("\nsystem_runtime_dotnet_gc_collections{", await client.GetStringAsync("/metrics"));
    }

    [Fact]
    public async Task Open_incidents_are_counted_from_storage_so_a_restart_still_shows_them()
    {
        var settings = new Dictionary<string, string?> { ["Storage:Provider"] = "Sqlite", ["Storage:ConnectionString"] = $"Data Source={_db}" };
        using (var first = new AlertingFactory(_slack, settings))
        {
            var client = first.Authorized();
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Body("g-open-1", Firing("o1"))))).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Body("g-open-2", Firing("o2"), Firing("o3"))))).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Body("g-open-3", Firing("o4"))))).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Body("g-open-3", Resolved("o4"))))).StatusCode);
            await Eventually.True(async () => (await client.GetFromJsonAsync<JsonArray>("/api/incidents?state=closed"))!.Count == 1
                                              && (await client.GetFromJsonAsync<JsonArray>("/api/incidents"))!.Count == 2, "two incidents open, one closed");
            Assert.Equal(2, await MetricsText.ReadAsync(client, "b25_alerting_open_incidents"));
        }

        using var second = new AlertingFactory(_slack, settings);
        Assert.Equal(2, await MetricsText.ReadAsync(second.CreateClient(), "b25_alerting_open_incidents"));
    }
}
