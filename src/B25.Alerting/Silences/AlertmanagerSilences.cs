using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Silences;

internal sealed class AlertmanagerOptions
{
    public const string Section = "Alertmanager";

    /// <summary>
    /// The Alertmanager cluster's base URLs (e.g. http://alertmanager-0:9093). Silences gossip between peers, so one
    /// that takes a silence is enough; the next is tried when one fails. Empty: silencing is off.
    /// </summary>
    public List<string> Urls { get; set; } = [];

    /// <summary>Timeout of one call to one Alertmanager.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:01:00")]
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(5);

    public bool Enabled => Urls.Any(u => !string.IsNullOrWhiteSpace(u));
}

/// <summary>Ok with the silence's id, or the error of every Alertmanager tried.</summary>
internal sealed record SilenceCallResult(bool Ok, string? SilenceId = null, string? Error = null);

/// <summary>A silence as Alertmanager lists it (only what the service looks at).</summary>
internal sealed record ListedSilence(string Id, string State, string Comment, DateTimeOffset? EndsAt);

/// <summary>Alertmanager's API v2 for silences: create one, expire one, list them.</summary>
internal interface IAlertmanagerSilences
{
    bool Enabled { get; }

    /// <summary>POST /api/v2/silences with equality matchers, on the first Alertmanager that takes it.</summary>
    Task<SilenceCallResult> CreateAsync(IReadOnlyDictionary<string, string> matchers, DateTimeOffset startsAt, DateTimeOffset endsAt, string createdBy,
        string comment, CancellationToken cancellationToken);

    /// <summary>DELETE /api/v2/silence/{id} (expires it), on the first Alertmanager that answers; an unknown or already expired silence counts as done.</summary>
    Task<SilenceCallResult> ExpireAsync(string silenceId, CancellationToken cancellationToken);

    /// <summary>GET /api/v2/silences of the first Alertmanager that answers; null when none does.</summary>
    Task<IReadOnlyList<ListedSilence>?> ListAsync(CancellationToken cancellationToken);
}

internal sealed partial class AlertmanagerSilences(HttpClient http, IOptions<AlertmanagerOptions> options, ILogger<AlertmanagerSilences> logger)
    : IAlertmanagerSilences
{
    private readonly List<string> _urls = options.Value.Urls.Where(u => !string.IsNullOrWhiteSpace(u)).Select(u => u.TrimEnd('/')).ToList();

    public bool Enabled => _urls.Count > 0;

    public Task<SilenceCallResult> CreateAsync(IReadOnlyDictionary<string, string> matchers, DateTimeOffset startsAt, DateTimeOffset endsAt,
        string createdBy, string comment, CancellationToken cancellationToken)
    {
        var body = new JsonObject
        {
            ["matchers"] = new JsonArray(matchers.OrderBy(m => m.Key, StringComparer.Ordinal).Select(m => (JsonNode)new JsonObject
            {
                ["name"] = m.Key, ["value"] = m.Value, ["isRegex"] = false, ["isEqual"] = true,
            }).ToArray()),
            ["startsAt"] = startsAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
            ["endsAt"] = endsAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
            ["createdBy"] = createdBy,
            ["comment"] = comment,
        };
        return EachAsync("create", async (url, ct) =>
        {
            using var response = await http.PostAsync($"{url}/api/v2/silences",
                new StringContent(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json"), ct);
            var text = await response.Content.ReadAsStringAsync(ct);
            if (!response.IsSuccessStatusCode) return new SilenceCallResult(false, Error: $"{(int)response.StatusCode} {Short(text)}");
            var id = JsonNode.Parse(text)?["silenceID"]?.GetValue<string>();
            return id is null ? new SilenceCallResult(false, Error: "no silenceID in the answer") : new SilenceCallResult(true, id);
        }, cancellationToken);
    }

    public Task<SilenceCallResult> ExpireAsync(string silenceId, CancellationToken cancellationToken) =>
        EachAsync("expire", async (url, ct) =>
        {
            using var response = await http.DeleteAsync($"{url}/api/v2/silence/{Uri.EscapeDataString(silenceId)}", ct);
            var text = await response.Content.ReadAsStringAsync(ct);
            // Already expired (500 "silence ... already expired") or unknown (404): nothing is silenced by it any more.
            if (response.IsSuccessStatusCode || (int)response.StatusCode == 404 || text.Contains("already expired", StringComparison.OrdinalIgnoreCase))
                return new SilenceCallResult(true, silenceId);
            return new SilenceCallResult(false, Error: $"{(int)response.StatusCode} {Short(text)}");
        }, cancellationToken);

    public async Task<IReadOnlyList<ListedSilence>?> ListAsync(CancellationToken cancellationToken)
    {
        foreach (var url in _urls)
        {
            try
            {
                var list = await http.GetFromJsonAsync<JsonArray>($"{url}/api/v2/silences", cancellationToken);
                return (list ?? []).OfType<JsonObject>().Select(s => new ListedSilence(
                    s["id"]?.GetValue<string>() ?? "", s["status"]?["state"]?.GetValue<string>() ?? "", s["comment"]?.GetValue<string>() ?? "",
                    DateTimeOffset.TryParse(s["endsAt"]?.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var ends)
                        ? ends : null)).ToList();
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException && !cancellationToken.IsCancellationRequested)
            {
                LogFailed(url, "list", ex.Message);
            }
        }
        return null;
    }

    private async Task<SilenceCallResult> EachAsync(string operation, Func<string, CancellationToken, Task<SilenceCallResult>> call,
        CancellationToken cancellationToken)
    {
        if (_urls.Count == 0) return new SilenceCallResult(false, Error: "Alertmanager:Urls is not set");
        var errors = new List<string>();
        foreach (var url in _urls)
        {
            SilenceCallResult result;
            try
            {
                result = await call(url, cancellationToken);
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException && !cancellationToken.IsCancellationRequested)
            {
                result = new SilenceCallResult(false, Error: ex is TaskCanceledException ? "timed out" : ex.Message);
            }
            SilenceMetrics.Calls.WithLabels(operation, result.Ok ? "ok" : "failed").Inc();
            if (result.Ok) return result;
            LogFailed(url, operation, result.Error ?? "");
            errors.Add($"{url}: {result.Error}");
        }
        return new SilenceCallResult(false, Error: string.Join("; ", errors));
    }

    private static string Short(string text) => text.Length > 200 ? text[..200] : text.Trim();

    [LoggerMessage(EventId = 6201, Level = LogLevel.Warning, Message = "Alertmanager {Url} did not {Operation} a silence ({Error}); the next one is tried")]
    private partial void LogFailed(string url, string operation, string error);
}

internal static class SilenceMetrics
{
    public static readonly global::Prometheus.Counter Calls = global::Prometheus.Metrics.CreateCounter(
        "b25_alerting_alertmanager_silence_calls_total", "Calls to one Alertmanager's silences API, by operation (create, expire) and outcome (ok, failed).",
        new global::Prometheus.CounterConfiguration { LabelNames = ["operation", "outcome"] });
}
