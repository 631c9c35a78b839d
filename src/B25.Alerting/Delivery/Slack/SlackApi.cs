using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Delivery.Slack;

/// <summary>
/// Ok; Transient (retry later); Permanent (recorded, never retried); Unknown: the request may have
/// reached Slack but no answer came (timeout, connection lost after sending, 5xx to a post), so a
/// non-idempotent call must be reconciled with the channel's history before it is sent again.
/// </summary>
internal enum SlackCallStatus { Ok, Transient, Permanent, Unknown }

/// <summary>Slack message metadata: what lets the service find its own message again after an unknown outcome.</summary>
internal sealed record SlackMessageMetadata(string EventType, IReadOnlyDictionary<string, string> Payload);

/// <summary>
/// A search of a channel's history (or a thread) for a message carrying matching metadata.
/// Status Ok with Ts null: searched, not there. Permanent: cannot search (missing_scope,
/// not_in_channel, channel_not_found: Error says which). Transient: try again later.
/// </summary>
internal sealed record SlackFindResult(SlackCallStatus Status, string? Ts = null, string? Error = null, TimeSpan? RetryAfter = null);

/// <summary>A channel name resolved to its id (conversations.list). Status as in <see cref="SlackFindResult"/>; Id null when no such channel.</summary>
internal sealed record SlackChannelResult(SlackCallStatus Status, string? Id = null, string? Error = null, TimeSpan? RetryAfter = null);

/// <summary>One Web API call's result, classified: retry classification is data.</summary>
internal sealed record SlackCallResult(SlackCallStatus Status, string? Channel = null, string? Ts = null, string? Error = null, TimeSpan? RetryAfter = null)
{
    public bool IsOk => Status == SlackCallStatus.Ok;
}

/// <summary>The Slack Web API methods the service uses.</summary>
internal interface ISlackApi
{
    /// <summary>chat.postMessage; <paramref name="metadata"/> is attached as message metadata when given.</summary>
    Task<SlackCallResult> PostMessageAsync(string channel, string text, JsonArray? blocks, string? threadTs, SlackMessageMetadata? metadata,
        CancellationToken cancellationToken);

    Task<SlackCallResult> UpdateAsync(string channel, string ts, string text, JsonArray? blocks, CancellationToken cancellationToken);

    /// <summary>
    /// Looks for a message posted since <paramref name="oldest"/> whose metadata has <paramref name="eventType"/>
    /// and every pair of <paramref name="payload"/>: conversations.history of the channel (id, not name), or
    /// conversations.replies of the thread <paramref name="threadTs"/>, with include_all_metadata, paging
    /// through at most a few pages.
    /// </summary>
    Task<SlackFindResult> FindMessageAsync(string channelId, string? threadTs, DateTimeOffset oldest, string eventType,
        IReadOnlyDictionary<string, string> payload, CancellationToken cancellationToken);

    /// <summary>The id of a channel given as "#name" or "name" (conversations.list); an id is returned as it is.</summary>
    Task<SlackChannelResult> ResolveChannelAsync(string channel, CancellationToken cancellationToken);
}

/// <summary>Slack's Web API over a typed HttpClient (chat.postMessage, chat.update).</summary>
internal sealed class SlackWebApi(HttpClient http, IOptions<SlackOptions> options) : ISlackApi
{
    // Slack error codes that mean "try again later"; every other ok:false error is permanent.
    private static readonly HashSet<string> TransientErrors =
        ["ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"];

    public Task<SlackCallResult> PostMessageAsync(string channel, string text, JsonArray? blocks, string? threadTs, SlackMessageMetadata? metadata,
        CancellationToken cancellationToken)
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
        // TODO(reconcile): attach metadata; classify Unknown.
        return CallAsync("chat.postMessage", body, cancellationToken);
    }

    public Task<SlackFindResult> FindMessageAsync(string channelId, string? threadTs, DateTimeOffset oldest, string eventType,
        IReadOnlyDictionary<string, string> payload, CancellationToken cancellationToken) =>
        Task.FromResult(new SlackFindResult(SlackCallStatus.Permanent, Error: "not implemented"));

    public Task<SlackChannelResult> ResolveChannelAsync(string channel, CancellationToken cancellationToken) =>
        Task.FromResult(new SlackChannelResult(SlackCallStatus.Permanent, Error: "not implemented"));

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

    public Task<SlackCallResult> PostMessageAsync(string channel, string text, JsonArray? blocks, string? threadTs, SlackMessageMetadata? metadata,
        CancellationToken cancellationToken)
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

    // The log keeps no history to search: a post whose outcome is unknown is written again.
    public Task<SlackFindResult> FindMessageAsync(string channelId, string? threadTs, DateTimeOffset oldest, string eventType,
        IReadOnlyDictionary<string, string> payload, CancellationToken cancellationToken) =>
        Task.FromResult(new SlackFindResult(SlackCallStatus.Ok));

    public Task<SlackChannelResult> ResolveChannelAsync(string channel, CancellationToken cancellationToken) =>
        Task.FromResult(new SlackChannelResult(SlackCallStatus.Ok, channel));

    [LoggerMessage(EventId = 3101, Level = LogLevel.Information, Message = "Slack (log only) post to {Channel} ts={Ts} thread={ThreadTs}: {Text}")]
    private partial void LogPost(string channel, string ts, string? threadTs, string text);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Information, Message = "Slack (log only) update of {Channel} ts={Ts}: {Text}")]
    private partial void LogUpdate(string channel, string ts, string text);
}
