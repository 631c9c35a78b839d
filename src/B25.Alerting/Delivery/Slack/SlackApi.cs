using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Delivery.Slack;

internal enum SlackCallStatus { Ok, Transient, Permanent }

/// <summary>One Web API call's result, classified: retry classification is data.</summary>
internal sealed record SlackCallResult(SlackCallStatus Status, string? Channel = null, string? Ts = null, string? Error = null, TimeSpan? RetryAfter = null)
{
    public bool IsOk => Status == SlackCallStatus.Ok;
}

/// <summary>The Slack Web API methods the service uses.</summary>
internal interface ISlackApi
{
    Task<SlackCallResult> PostMessageAsync(string channel, string text, JsonArray? blocks, string? threadTs, CancellationToken cancellationToken);

    Task<SlackCallResult> UpdateAsync(string channel, string ts, string text, JsonArray? blocks, CancellationToken cancellationToken);
}

/// <summary>Slack's Web API over a typed HttpClient (chat.postMessage, chat.update).</summary>
internal sealed class SlackWebApi(HttpClient http, IOptions<SlackOptions> options) : ISlackApi
{
    // Slack error codes that mean "try again later"; every other ok:false error is permanent.
    private static readonly HashSet<string> TransientErrors =
        ["ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"];

    public Task<SlackCallResult> PostMessageAsync(string channel, string text, JsonArray? blocks, string? threadTs, CancellationToken cancellationToken)
    {
        var body = new JsonObject
        {
            ["channel"] = channel,
            ["text"] = text,
            ["unfurl_links"] = false,
            ["unfurl_media"] = false,
        };
        if (blocks is not null) body["blocks"] = blocks.DeepClone();
        if (threadTs is not null) body["thread_ts"] = threadTs;
        return CallAsync("chat.postMessage", body, cancellationToken);
    }

    public Task<SlackCallResult> UpdateAsync(string channel, string ts, string text, JsonArray? blocks, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["channel"] = channel, ["ts"] = ts, ["text"] = text };
        if (blocks is not null) body["blocks"] = blocks.DeepClone();
        return CallAsync("chat.update", body, cancellationToken);
    }

    private async Task<SlackCallResult> CallAsync(string method, JsonObject body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, method)
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", options.Value.BotToken);
        try
        {
            using var response = await http.SendAsync(request, cancellationToken);
            var retryAfter = RetryAfter(response);
            if (response.StatusCode == HttpStatusCode.TooManyRequests || (int)response.StatusCode >= 500)
                return new SlackCallResult(SlackCallStatus.Transient, Error: $"HTTP {(int)response.StatusCode}", RetryAfter: retryAfter);
            if (!response.IsSuccessStatusCode)
                return new SlackCallResult(SlackCallStatus.Permanent, Error: $"HTTP {(int)response.StatusCode}");

            var json = await response.Content.ReadAsStringAsync(cancellationToken);
            JsonNode? node;
            try { node = JsonNode.Parse(json); }
            catch (JsonException) { return new SlackCallResult(SlackCallStatus.Transient, Error: "response was not JSON"); }
            if (node?["ok"]?.GetValue<bool>() == true)
                return new SlackCallResult(SlackCallStatus.Ok, node["channel"]?.GetValue<string>(), node["ts"]?.GetValue<string>());
            var error = node?["error"]?.GetValue<string>() ?? "unknown_error";
            return TransientErrors.Contains(error)
                ? new SlackCallResult(SlackCallStatus.Transient, Error: error, RetryAfter: retryAfter)
                : new SlackCallResult(SlackCallStatus.Permanent, Error: error);
        }
        catch (HttpRequestException ex)
        {
            return new SlackCallResult(SlackCallStatus.Transient, Error: $"connection failed: {ex.HttpRequestError}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new SlackCallResult(SlackCallStatus.Transient, Error: "timeout");
        }
    }

    private static TimeSpan? RetryAfter(HttpResponseMessage response) =>
        response.Headers.RetryAfter switch
        {
            { Delta: { } delta } => delta,
            { Date: { } date } => date - DateTimeOffset.UtcNow,
            _ => null,
        };
}

/// <summary>With no bot token the embedded default still works: every Slack message goes to the log.</summary>
internal sealed partial class SlackLogApi(ILogger<SlackLogApi> logger) : ISlackApi
{
    private long _sequence;

    public Task<SlackCallResult> PostMessageAsync(string channel, string text, JsonArray? blocks, string? threadTs, CancellationToken cancellationToken)
    {
        var ts = $"log.{Interlocked.Increment(ref _sequence):D6}";
        LogPost(channel, ts, threadTs, text);
        return Task.FromResult(new SlackCallResult(SlackCallStatus.Ok, channel, ts));
    }

    public Task<SlackCallResult> UpdateAsync(string channel, string ts, string text, JsonArray? blocks, CancellationToken cancellationToken)
    {
        LogUpdate(channel, ts, text);
        return Task.FromResult(new SlackCallResult(SlackCallStatus.Ok, channel, ts));
    }

    [LoggerMessage(EventId = 3101, Level = LogLevel.Information, Message = "Slack (log only) post to {Channel} ts={Ts} thread={ThreadTs}: {Text}")]
    private partial void LogPost(string channel, string ts, string? threadTs, string text);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Information, Message = "Slack (log only) update of {Channel} ts={Ts}: {Text}")]
    private partial void LogUpdate(string channel, string ts, string text);
}
