using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using B25.Alerting.Observability;
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

    /// <summary>
    /// Slack refused the message for its form, not for where or by whom it was sent: the same call with a
    /// smaller, plainer message may pass. Errors documented for chat.postMessage and chat.update:
    /// msg_blocks_too_long (the blocks hold too much text in all), invalid_blocks and invalid_blocks_format
    /// (a block breaks Block Kit's schema or limits), msg_too_long, no_text, invalid_attachments and
    /// too_many_attachments. Nothing was posted or changed.
    /// </summary>
    public bool RefusedForm => Status == SlackCallStatus.Permanent && Error is not null && FormErrors.Contains(Error);

    private static readonly HashSet<string> FormErrors =
        ["msg_blocks_too_long", "invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "invalid_attachments", "too_many_attachments"];
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

/// <summary>
/// Slack's Web API over a typed HttpClient: chat.postMessage and chat.update to deliver, conversations.history,
/// conversations.replies and conversations.list to reconcile a post whose outcome is unknown.
/// </summary>
/// <remarks>
/// Bot token scopes: chat:write to post and edit (message metadata needs no scope of its own);
/// channels:history and groups:history to read public and private channels and their threads;
/// channels:read and groups:read to resolve channel names. Without a read scope the searches answer
/// Permanent missing_scope: reconciliation is then impossible, not worth retrying.
/// A post is not idempotent: an answer that does not say whether it arrived (timeout, connection lost after
/// sending, 5xx, Slack's internal_error and fatal_error, which "may have partly succeeded") is Unknown, never
/// Transient, so the caller looks for the message before posting it again. Every other call is idempotent.
/// </remarks>
internal sealed partial class SlackWebApi(HttpClient http, IOptions<SlackOptions> options) : ISlackApi
{
    // Slack error codes that mean "try again later"; every other ok:false error is permanent.
    private static readonly HashSet<string> TransientErrors =
        ["ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"];

    // Of those, the ones Slack documents as "some aspect of the operation may have succeeded".
    private static readonly HashSet<string> MayHaveActedErrors = ["internal_error", "fatal_error"];

    // Slack's answers for a bot token that no longer authenticates: every call fails until the token is
    // replaced, which no retry fixes, so they are counted for an alert (b25_alerting_slack_auth_failures_total).
    private static readonly HashSet<string> AuthErrors = ["invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"];

    private const int HistoryPageLimit = 200;
    private const int MaxHistoryPages = 5;
    private const int ChannelPageLimit = 1000;
    private const int MaxChannelPages = 20;

    public async Task<SlackCallResult> PostMessageAsync(string channel, string text, JsonArray? blocks, string? threadTs, SlackMessageMetadata? metadata,
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
        if (metadata is not null)
        {
            var payload = new JsonObject();
            foreach (var (key, value) in metadata.Payload) payload[key] = value;
            body["metadata"] = new JsonObject { ["event_type"] = metadata.EventType, ["event_payload"] = payload };
        }
        var answer = await SendAsync(Post("chat.postMessage", body), idempotent: false, cancellationToken);
        return answer.ToCallResult();
    }

    public async Task<SlackCallResult> UpdateAsync(string channel, string ts, string text, JsonArray? blocks, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["channel"] = channel, ["ts"] = ts, ["text"] = text };
        if (blocks is not null) body["blocks"] = blocks.DeepClone();
        var answer = await SendAsync(Post("chat.update", body), idempotent: true, cancellationToken);
        return answer.ToCallResult();
    }

    public async Task<SlackFindResult> FindMessageAsync(string channelId, string? threadTs, DateTimeOffset oldest, string eventType,
        IReadOnlyDictionary<string, string> payload, CancellationToken cancellationToken)
    {
        var query = threadTs is null
            ? $"conversations.history?channel={Uri.EscapeDataString(channelId)}"
            : $"conversations.replies?channel={Uri.EscapeDataString(channelId)}&ts={Uri.EscapeDataString(threadTs)}";
        query += $"&oldest={SlackTs(oldest)}&inclusive=true&include_all_metadata=true&limit={HistoryPageLimit}";

        string? found = null;
        string? cursor = null;
        for (var page = 0; page < MaxHistoryPages; page++)
        {
            var answer = await SendAsync(Get(query, cursor), idempotent: true, cancellationToken);
            if (answer.Status != SlackCallStatus.Ok)
                return new SlackFindResult(answer.Status, Error: answer.Error, RetryAfter: answer.RetryAfter);

            foreach (var message in (answer.Body!["messages"] as JsonArray ?? []).OfType<JsonObject>())
            {
                if (message["ts"]?.GetValue<string>() is not { } ts || !Matches(message["metadata"] as JsonObject, eventType, payload))
                    continue;
                // The oldest match: if a post was made twice, the first one is the message the service kept.
                if (found is null || CompareTs(ts, found) < 0)
                    found = ts;
            }
            if ((cursor = NextCursor(answer.Body!)) is null)
                break;
        }
        return new SlackFindResult(SlackCallStatus.Ok, found);
    }

    public async Task<SlackChannelResult> ResolveChannelAsync(string channel, CancellationToken cancellationToken)
    {
        if (ChannelId().IsMatch(channel))
            return new SlackChannelResult(SlackCallStatus.Ok, channel);

        var name = channel.TrimStart('#');
        string? cursor = null;
        for (var page = 0; page < MaxChannelPages; page++)
        {
            var answer = await SendAsync(Get($"conversations.list?exclude_archived=true&types=public_channel,private_channel&limit={ChannelPageLimit}", cursor),
                idempotent: true, cancellationToken);
            if (answer.Status != SlackCallStatus.Ok)
                return new SlackChannelResult(answer.Status, Error: answer.Error, RetryAfter: answer.RetryAfter);

            var match = (answer.Body!["channels"] as JsonArray ?? []).OfType<JsonObject>()
                .FirstOrDefault(c => string.Equals(c["name"]?.GetValue<string>(), name, StringComparison.OrdinalIgnoreCase));
            if (match?["id"]?.GetValue<string>() is { } id)
                return new SlackChannelResult(SlackCallStatus.Ok, id);
            if ((cursor = NextCursor(answer.Body!)) is null)
                break;
        }
        return new SlackChannelResult(SlackCallStatus.Ok);
    }

    private static bool Matches(JsonObject? metadata, string eventType, IReadOnlyDictionary<string, string> payload)
    {
        if (metadata?["event_type"] is not JsonValue type || type.ToString() != eventType)
            return false;
        var values = metadata["event_payload"] as JsonObject;
        foreach (var (key, expected) in payload)
            if (values?[key] is not JsonValue value || value.ToString() != expected)
                return false;
        return true;
    }

    private static string? NextCursor(JsonNode body) =>
        body["response_metadata"]?["next_cursor"]?.GetValue<string>() is { Length: > 0 } next ? next : null;

    /// <summary>Slack's timestamps: Unix seconds with six decimals.</summary>
    private static string SlackTs(DateTimeOffset instant)
    {
        var ticks = instant.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        return $"{ticks / TimeSpan.TicksPerSecond}.{ticks % TimeSpan.TicksPerSecond / 10:D6}";
    }

    private static int CompareTs(string a, string b) =>
        decimal.TryParse(a, System.Globalization.CultureInfo.InvariantCulture, out var x)
        && decimal.TryParse(b, System.Globalization.CultureInfo.InvariantCulture, out var y)
            ? x.CompareTo(y)
            : string.CompareOrdinal(a, b);

    private static HttpRequestMessage Post(string method, JsonObject body) => new(HttpMethod.Post, method)
    {
        Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
    };

    private static HttpRequestMessage Get(string query, string? cursor) =>
        new(HttpMethod.Get, cursor is null ? query : $"{query}&cursor={Uri.EscapeDataString(cursor)}");

    /// <summary>Sends one call and classifies its answer; an ok answer comes back with its body.</summary>
    private async Task<Answer> SendAsync(HttpRequestMessage request, bool idempotent, CancellationToken cancellationToken)
    {
        using var _ = request;
        // What a failure that may have happened after Slack acted on the call means for this call.
        var unclear = idempotent ? SlackCallStatus.Transient : SlackCallStatus.Unknown;
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", options.Value.BotToken);
        try
        {
            using var response = await http.SendAsync(request, cancellationToken);
            var retryAfter = RetryAfter(response);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
                return new Answer(SlackCallStatus.Transient, Error: "HTTP 429", RetryAfter: retryAfter);
            if ((int)response.StatusCode >= 500)
                return new Answer(unclear, Error: $"HTTP {(int)response.StatusCode}", RetryAfter: retryAfter);
            if (!response.IsSuccessStatusCode)
                return new Answer(SlackCallStatus.Permanent, Error: $"HTTP {(int)response.StatusCode}");

            var json = await response.Content.ReadAsStringAsync(cancellationToken);
            JsonNode? node;
            try { node = JsonNode.Parse(json); }
            catch (JsonException) { return new Answer(unclear, Error: "response was not JSON"); }
            if (node?["ok"]?.GetValue<bool>() == true)
                return new Answer(SlackCallStatus.Ok, node);
            var error = node?["error"]?.GetValue<string>() ?? "unknown_error";
            if (AuthErrors.Contains(error) && MetricsScope.Counts)
                AlertingMetrics.SlackAuthFailures.Inc();
            if (!idempotent && MayHaveActedErrors.Contains(error))
                return new Answer(SlackCallStatus.Unknown, Error: error, RetryAfter: retryAfter);
            return TransientErrors.Contains(error)
                ? new Answer(SlackCallStatus.Transient, Error: error, RetryAfter: retryAfter)
                : new Answer(SlackCallStatus.Permanent, Error: error);
        }
        catch (HttpRequestException ex)
        {
            // No connection: nothing was sent. Any other failure may have come after Slack read the request.
            var sentNothing = ex.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError
                or HttpRequestError.SecureConnectionError or HttpRequestError.ProxyTunnelError;
            return new Answer(sentNothing ? SlackCallStatus.Transient : unclear, Error: $"connection failed: {ex.HttpRequestError}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new Answer(unclear, Error: "timeout");
        }
    }

    private static TimeSpan? RetryAfter(HttpResponseMessage response) =>
        response.Headers.RetryAfter switch
        {
            { Delta: { } delta } => delta,
            { Date: { } date } => date - DateTimeOffset.UtcNow,
            _ => null,
        };

    [GeneratedRegex("^[CGD][A-Z0-9]{6,}$")]
    private static partial Regex ChannelId();

    private sealed record Answer(SlackCallStatus Status, JsonNode? Body = null, string? Error = null, TimeSpan? RetryAfter = null)
    {
        public SlackCallResult ToCallResult() => Status == SlackCallStatus.Ok
            ? new SlackCallResult(SlackCallStatus.Ok, Body?["channel"]?.GetValue<string>(), Body?["ts"]?.GetValue<string>())
            : new SlackCallResult(Status, Error: Error, RetryAfter: RetryAfter);
    }
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
