using System.Globalization;
using System.Net;
using System.Text.Json;

namespace B25.Alerting.Enrichment.PromQl;

/// <summary>One series of a range query: its labels and its samples in time order.</summary>
internal sealed record PromSeries(IReadOnlyDictionary<string, string> Labels, IReadOnlyList<MetricPoint> Points);

/// <summary>A range query's answer, with the window it was asked for (a cached answer keeps its own window).</summary>
internal sealed record PromRange(DateTimeOffset Start, DateTimeOffset End, TimeSpan Step, IReadOnlyList<PromSeries> Series);

/// <summary>
/// Prometheus' HTTP API, <c>/api/v1/query_range</c>, as a typed client. POST with a form body (Prometheus
/// accepts both), so a long expression never meets a URL length limit.
/// </summary>
internal sealed class PrometheusQueryClient(HttpClient http)
{
    public async Task<PromRange> QueryRangeAsync(string expression, DateTimeOffset start, DateTimeOffset end, TimeSpan step,
        TimeSpan evaluationTimeout, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "api/v1/query_range")
        {
            Content = new FormUrlEncodedContent(
            [
                new("query", expression),
                new("start", UnixSeconds(start)),
                new("end", UnixSeconds(end)),
                new("step", step.TotalSeconds.ToString(CultureInfo.InvariantCulture)),
                // Prometheus stops evaluating when we stop waiting.
                new("timeout", $"{Math.Max(1, (long)Math.Ceiling(evaluationTimeout.TotalMilliseconds))}ms"),
            ]),
        };
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            throw new SourceException(FailureReason.Unreachable, Describe(ex));
        }
        using (response)
        {
            JsonDocument document;
            try
            {
                await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
                document = await JsonDocument.ParseAsync(body, cancellationToken: cancellationToken);
            }
            catch (JsonException)
            {
                throw new SourceException(response.IsSuccessStatusCode ? FailureReason.BadResponse : FailureReason.HttpError,
                    $"HTTP {(int)response.StatusCode}: the answer is not Prometheus API JSON");
            }
            catch (HttpRequestException ex)
            {
                throw new SourceException(FailureReason.Unreachable, Describe(ex));
            }
            using (document)
                return Read(document.RootElement, response.StatusCode, start, end, step);
        }
    }

    private static PromRange Read(JsonElement root, HttpStatusCode status, DateTimeOffset start, DateTimeOffset end, TimeSpan step)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("status", out var state))
            throw new SourceException(FailureReason.BadResponse, $"HTTP {(int)status}: the answer is not Prometheus API JSON");
        if (state.ValueEquals("error"))
        {
            var type = root.TryGetProperty("errorType", out var t) ? t.GetString() : null;
            var error = root.TryGetProperty("error", out var e) ? e.GetString() : null;
            // bad_data: the expression itself is refused (400); anything else is Prometheus failing (422, 503, timeout...).
            var reason = type == "bad_data" ? FailureReason.QueryError : FailureReason.HttpError;
            throw new SourceException(reason, $"HTTP {(int)status} {type}: {error}");
        }
        if (!state.ValueEquals("success") || (int)status is < 200 or > 299)
            throw new SourceException(FailureReason.HttpError, $"HTTP {(int)status}");
        if (!root.TryGetProperty("data", out var data) || !data.TryGetProperty("result", out var result)
            || result.ValueKind != JsonValueKind.Array)
            throw new SourceException(FailureReason.BadResponse, "the answer has no data.result");

        var series = new List<PromSeries>(result.GetArrayLength());
        foreach (var item in result.EnumerateArray())
        {
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            if (item.TryGetProperty("metric", out var metric) && metric.ValueKind == JsonValueKind.Object)
                foreach (var label in metric.EnumerateObject())
                    labels[label.Name] = label.Value.GetString() ?? "";
            var points = new List<MetricPoint>();
            if (item.TryGetProperty("values", out var values) && values.ValueKind == JsonValueKind.Array)
                foreach (var pair in values.EnumerateArray())
                    if (ReadSample(pair) is { } point) points.Add(point);
            series.Add(new PromSeries(labels, points));
        }
        return new PromRange(start, end, step, series);
    }

    /// <summary>[unix seconds (number), "value" (string: a number, NaN, +Inf or -Inf)].</summary>
    private static MetricPoint? ReadSample(JsonElement pair)
    {
        if (pair.ValueKind != JsonValueKind.Array || pair.GetArrayLength() < 2) return null;
        var time = pair[0];
        var value = pair[1];
        if (time.ValueKind != JsonValueKind.Number || value.ValueKind != JsonValueKind.String) return null;
        return ParseValue(value.GetString()) is { } v ? new MetricPoint((long)Math.Round(time.GetDouble() * 1000), v) : null;
    }

    internal static double? ParseValue(string? text) => text switch
    {
        "NaN" => double.NaN,
        "+Inf" or "Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        _ => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : null,
    };

    private static string UnixSeconds(DateTimeOffset time) =>
        (time.ToUnixTimeMilliseconds() / 1000.0).ToString("0.###", CultureInfo.InvariantCulture);

    internal static string Describe(HttpRequestException ex) =>
        ex.HttpRequestError switch
        {
            HttpRequestError.ConnectionError when ex.InnerException is System.Net.Sockets.SocketException socket =>
                $"cannot connect: {socket.Message}",
            HttpRequestError.NameResolutionError => $"cannot resolve the host: {ex.Message}",
            _ => ex.Message,
        };
}
