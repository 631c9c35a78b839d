using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Delivery.PagerDuty;

internal enum PagerDutyCallStatus { Ok, Transient, Permanent }

/// <summary>One Events API call's result, classified: retry classification is data.</summary>
internal sealed record PagerDutyCallResult(PagerDutyCallStatus Status, string? Error = null, TimeSpan? RetryAfter = null)
{
    public bool IsOk => Status == PagerDutyCallStatus.Ok;
}

/// <summary>PagerDuty Events API v2: one event (trigger, acknowledge, resolve) per call.</summary>
internal interface IPagerDutyEventsApi
{
    Task<PagerDutyCallResult> SendAsync(string eventJson, CancellationToken cancellationToken);
}

/// <summary>The Events API over a typed HttpClient. 202 ok; 429, 408, 5xx, timeouts and connection failures retried; other 4xx permanent.</summary>
internal sealed class PagerDutyEventsApi(HttpClient http, IOptions<PagerDutyOptions> options, TimeProvider time) : IPagerDutyEventsApi
{
    private const int MaxErrorLength = 300;

    public async Task<PagerDutyCallResult> SendAsync(string eventJson, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, options.Value.EventsUrl)
        {
            Content = new StringContent(eventJson, Encoding.UTF8, "application/json"),
        };
        try
        {
            using var response = await http.SendAsync(request, cancellationToken);
            var status = (int)response.StatusCode;
            if (response.IsSuccessStatusCode)
                return new PagerDutyCallResult(PagerDutyCallStatus.Ok);
            var error = $"HTTP {status}{await DescribeAsync(response, cancellationToken)}";
            return response.StatusCode is HttpStatusCode.TooManyRequests or HttpStatusCode.RequestTimeout || status >= 500
                ? new PagerDutyCallResult(PagerDutyCallStatus.Transient, error, RetryAfter(response))
                : new PagerDutyCallResult(PagerDutyCallStatus.Permanent, error);
        }
        catch (HttpRequestException ex)
        {
            return new PagerDutyCallResult(PagerDutyCallStatus.Transient, $"connection failed: {ex.HttpRequestError}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new PagerDutyCallResult(PagerDutyCallStatus.Transient, "timeout");
        }
    }

    /// <summary>PagerDuty answers errors as {"status":"invalid event","message":"...","errors":["..."]}.</summary>
    private static async Task<string> DescribeAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        string body;
        try { body = await response.Content.ReadAsStringAsync(cancellationToken); }
        catch (HttpRequestException) { return ""; }
        string text;
        try
        {
            var node = JsonNode.Parse(body) as JsonObject;
            var parts = new List<string>();
            if (node?["message"] is JsonValue message) parts.Add(message.ToString());
            if (node?["errors"] is JsonArray errors) parts.AddRange(errors.Select(e => e?.ToString() ?? "").Where(e => e.Length > 0));
            text = string.Join("; ", parts);
        }
        catch (System.Text.Json.JsonException)
        {
            text = body.Trim();
        }
        if (text.Length == 0) return "";
        text = ": " + text.ReplaceLineEndings(" ");
        return TextLimits.Truncate(text, MaxErrorLength);
    }

    private TimeSpan? RetryAfter(HttpResponseMessage response) =>
        response.Headers.RetryAfter switch
        {
            { Delta: { } delta } => delta,
            { Date: { } date } => date - time.GetUtcNow(),
            _ => null,
        };
}
