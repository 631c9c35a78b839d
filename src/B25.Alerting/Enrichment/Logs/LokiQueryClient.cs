using System.Globalization;
using System.Text;
using System.Text.Json;

namespace B25.Alerting.Enrichment.Logs;

/// <summary>One log entry as Loki returned it, with its stream's labels.</summary>
internal sealed record LokiEntry(long UnixNanos, string Line, IReadOnlyDictionary<string, string> StreamLabels);

/// <summary>A log query's answer, newest first.</summary>
internal sealed record LokiLines(IReadOnlyList<LokiEntry> Entries);

/// <summary>
/// Loki's <c>GET /loki/api/v1/query_range</c> (a log query: the answer is <c>resultType: streams</c>, each stream
/// its labels and <c>values</c> of [nanosecond unix epoch as a string, line]), as a typed client.
/// </summary>
internal sealed class LokiQueryClient(HttpClient http)
{
    /// <summary>
    /// The newest <paramref name="limit"/> entries of <paramref name="logQl"/> in [from, to) (Loki's end is
    /// exclusive), merged across streams, newest first.
    /// </summary>
    public async Task<LokiLines> QueryRangeAsync(string logQl, DateTimeOffset from, DateTimeOffset to, int limit, CancellationToken cancellationToken)
    {
        var uri = new StringBuilder("loki/api/v1/query_range?query=").Append(Uri.EscapeDataString(logQl))
            .Append("&start=").Append(UnixNanos(from))
            .Append("&end=").Append(UnixNanos(to))
            .Append("&limit=").Append(limit.ToString(CultureInfo.InvariantCulture))
            .Append("&direction=backward")
            .ToString();
        HttpResponseMessage response;
        try
        {
            response = await http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            throw new SourceException(FailureReason.Unreachable, PromQl.PrometheusQueryClient.Describe(ex));
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                // Loki answers errors as plain text ("parse error at line 1, col 2: ...").
                var text = await ReadSomeAsync(response, cancellationToken);
                var reason = (int)response.StatusCode == 400 ? FailureReason.QueryError : FailureReason.HttpError;
                throw new SourceException(reason, $"HTTP {(int)response.StatusCode}: {text}");
            }
            try
            {
                await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
                using var document = await JsonDocument.ParseAsync(body, cancellationToken: cancellationToken);
                return Read(document.RootElement, limit);
            }
            catch (JsonException)
            {
                throw new SourceException(FailureReason.BadResponse, "the answer is not Loki API JSON");
            }
            catch (HttpRequestException ex)
            {
                throw new SourceException(FailureReason.Unreachable, PromQl.PrometheusQueryClient.Describe(ex));
            }
        }
    }

    private static LokiLines Read(JsonElement root, int limit)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("status", out var status) || !status.ValueEquals("success"))
            throw new SourceException(FailureReason.BadResponse, "the answer is not a successful Loki API answer");
        if (!root.TryGetProperty("data", out var data) || !data.TryGetProperty("result", out var result) || result.ValueKind != JsonValueKind.Array)
            throw new SourceException(FailureReason.BadResponse, "the answer has no data.result");
        if (data.TryGetProperty("resultType", out var type) && !type.ValueEquals("streams"))
            throw new SourceException(FailureReason.BadResponse, $"expected resultType streams, got {type}");

        var entries = new List<LokiEntry>();
        foreach (var stream in result.EnumerateArray())
        {
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            if (stream.TryGetProperty("stream", out var streamLabels) && streamLabels.ValueKind == JsonValueKind.Object)
                foreach (var label in streamLabels.EnumerateObject())
                    labels[label.Name] = label.Value.ValueKind == JsonValueKind.String ? label.Value.GetString()! : label.Value.ToString();
            if (!stream.TryGetProperty("values", out var values) || values.ValueKind != JsonValueKind.Array) continue;
            foreach (var value in values.EnumerateArray())
            {
                // [ "<ns>", "<line>" ], and a third element (structured metadata) when Loki is asked to categorise labels.
                if (value.ValueKind != JsonValueKind.Array || value.GetArrayLength() < 2) continue;
                if (value[0].ValueKind != JsonValueKind.String || value[1].ValueKind != JsonValueKind.String) continue;
                if (!long.TryParse(value[0].GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out var nanos)) continue;
                entries.Add(new LokiEntry(nanos, value[1].GetString()!, labels));
            }
        }
        entries.Sort((a, b) => b.UnixNanos.CompareTo(a.UnixNanos));
        if (entries.Count > limit) entries.RemoveRange(limit, entries.Count - limit);
        return new LokiLines(entries);
    }

    private static async Task<string> ReadSomeAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            text = text.Trim();
            return text.Length > 300 ? text[..300] + "…" : text;
        }
        catch (HttpRequestException)
        {
            return "";
        }
    }

    internal static string UnixNanos(DateTimeOffset time) =>
        (time.ToUnixTimeMilliseconds() * 1_000_000L).ToString(CultureInfo.InvariantCulture);
}

/// <summary>The LogQL of a service's warn/error lines, from the labels Promtail gives log streams.</summary>
internal static class LogQl
{
    /// <summary><c>{service_name="market-data", level=~"warn|error|fatal"}</c> with the configured label names.</summary>
    public static string ForService(string service, LokiOptions options) =>
        $"{{{options.ServiceLabel}=\"{Escape(service)}\", {options.LevelLabel}=~\"{string.Join('|', options.EffectiveLevels)}\"}}";

    /// <summary>A LogQL double-quoted string's content (Go string syntax): backslash, quote and control characters escaped.</summary>
    public static string Escape(string value)
    {
        var text = new StringBuilder(value.Length + 2);
        foreach (var c in value)
        {
            switch (c)
            {
                case '\\': text.Append(@"\\"); break;
                case '"': text.Append("\\\""); break;
                case '\n': text.Append(@"\n"); break;
                case '\r': text.Append(@"\r"); break;
                case '\t': text.Append(@"\t"); break;
                default:
                    if (char.IsControl(c)) text.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
                    else text.Append(c);
                    break;
            }
        }
        return text.ToString();
    }

    /// <summary>The line without its trailing newline, cut to <paramref name="maxLength"/> characters without splitting a surrogate pair.</summary>
    public static (string Line, bool Truncated) Truncate(string line, int maxLength)
    {
        line = line.TrimEnd('\r', '\n');
        if (line.Length <= maxLength) return (line, false);
        var cut = maxLength - 1;
        if (cut > 0 && char.IsHighSurrogate(line[cut - 1])) cut--;
        return (line[..cut] + "…", true);
    }
}
