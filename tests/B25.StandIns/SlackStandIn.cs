using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using WireMock.Server;

namespace B25.StandIns;

/// <summary>
/// Slack's Web API on 127.0.0.1: chat.postMessage and chat.update answer ok with a fresh ts, and every call the service
/// made is kept for assertions. Like Slack, it keeps what was posted (<see cref="Messages"/>) and serves it back through
/// conversations.history and conversations.replies (with message metadata on request), and resolves channel names
/// through conversations.list. A channel "#name" has the id "C" + NAME.
/// <para>
/// Behaviour can be switched per test (<see cref="Respond"/>: errors, 429; <see cref="Slow"/>), or per call by chance
/// (<see cref="Faults"/>: slow answers, 429 with Retry-After, 5xx, connection resets before or after keeping the message,
/// latency), each chat.* call logged per channel (<see cref="SlackChannel.Calls"/>) to check Retry-After and the send budget.
/// By default any channel posted to springs into being; <see cref="Strict"/> answers like a real workspace.
/// It also takes incoming-webhook posts (<see cref="WebhookUrl"/>), as Alertmanager's own slack_configs send them.
/// Paths it does not serve fall through to WireMock (<see cref="Server"/>), where a test may add its own answers.
/// </para>
/// </summary>
public sealed class SlackStandIn : IDisposable, IAsyncDisposable
{
    private const string ApiPath = "/api/";
    private const string WebhookPath = "/services/";
    private static readonly string[] WriteMethods = ["chat.postMessage", "chat.update"];
    private static readonly string[] ReadMethods = ["conversations.history", "conversations.replies", "conversations.list"];

    private readonly ConcurrentQueue<SlackCall> _calls = new();
    private readonly ConcurrentQueue<SlackCall> _reads = new();
    private readonly ConcurrentQueue<SlackWebhookPost> _webhooks = new();
    private readonly ConcurrentDictionary<string, CallLog> _callLogs = new(StringComparer.Ordinal); // channel id -> its chat.* calls
    private readonly Lock _lock = new();
    private readonly List<SlackMessage> _messages = [];
    private readonly Dictionary<string, string> _channels = new(StringComparer.Ordinal); // id -> name
    private volatile Func<SlackCall, (int Status, string Body, int? RetryAfter)?> _respond = _ => null;
    private volatile Slowness? _slow;
    private volatile string? _historyError;
    private long _lastTs;
    private long _changes;

    public SlackStandIn()
    {
        Server = VendorServer.Start(AnswerAsync);
    }

    /// <summary>The host; paths the stand-in does not serve (auth.test unless <see cref="AnswersAuthTest"/>) reach its mappings.</summary>
    public WireMockServer Server { get; }

    public int Port => Server.Port;

    public string ApiBaseUrl => Server.Urls[0] + ApiPath;

    /// <summary>
    /// Like a real workspace: a channel exists only once added (<see cref="AddChannels"/>; elsewhere channel_not_found),
    /// a reply needs its thread (thread_not_found), an update its message (message_not_found), every call a bot token (not_authed).
    /// </summary>
    public bool Strict { get; init; }

    /// <summary>Answers auth.test ok (the service's readiness check asks it); otherwise auth.test is left to <see cref="Server"/>'s mappings.</summary>
    public bool AnswersAuthTest { get; init; }

    /// <summary>The clock of the call logs (<see cref="CallLog"/> instants are its seconds).</summary>
    public Stopwatch Clock { get; init; } = Stopwatch.StartNew();

    /// <summary>The faults chat.* calls meet, drawn per call; switchable while the service runs.</summary>
    public VendorFaults Faults { get; set; } = VendorFaults.None;

    /// <summary>Counts the faults drawn ("slack 429", ...).</summary>
    public FaultCounter Counter { get; set; } = new();

    /// <summary>Grows with every Web API call but auth.test: what "nothing changed for a while" watches.</summary>
    public long Changes => Interlocked.Read(ref _changes);

    /// <summary>The writes (chat.postMessage, chat.update) the service made.</summary>
    public IReadOnlyList<SlackCall> Calls => _calls.ToArray();

    /// <summary>The reads (conversations.*), their query parameters as the body.</summary>
    public IReadOnlyList<SlackCall> Reads => _reads.ToArray();

    public IReadOnlyList<SlackCall> Posts => Calls.Where(c => c.Method == "chat.postMessage" && c.ThreadTs is null && c.Answered).ToList();

    public IReadOnlyList<SlackCall> Updates => Calls.Where(c => c.Method == "chat.update" && c.Answered).ToList();

    public IReadOnlyList<SlackCall> Replies => Calls.Where(c => c.Method == "chat.postMessage" && c.ThreadTs is not null && c.Answered).ToList();

    /// <summary>Posts to the incoming webhooks (<see cref="WebhookUrl"/>), in arrival order.</summary>
    public IReadOnlyList<SlackWebhookPost> WebhookPosts => _webhooks.ToArray();

    /// <summary>What Slack holds, oldest first: top-level messages and thread replies (<see cref="SlackMessage.IsReply"/>).</summary>
    public IReadOnlyList<SlackMessage> Messages
    {
        get { lock (_lock) return _messages.ToList(); }
    }

    /// <summary>The channels that exist, with the chat.* calls each received.</summary>
    public IReadOnlyList<SlackChannel> Channels
    {
        get
        {
            lock (_lock)
                return _channels.Select(c => new SlackChannel(c.Key, c.Value, _callLogs.GetOrAdd(c.Key, _ => new CallLog()))).ToList();
        }
    }

    /// <summary>Messages per page of conversations.history/replies and channels per page of conversations.list (at most the limit asked for).</summary>
    public int PageSize { get; set; } = 100;

    /// <summary>An incoming-webhook URL (as Slack hands out for a channel); what is posted to it is kept in <see cref="WebhookPosts"/>.</summary>
    public string WebhookUrl(string name) => Server.Urls[0] + WebhookPath + name;

    /// <summary>
    /// Sets how calls are answered: return null for the normal ok answer, or a (status, body, retryAfter) to fail.
    /// Like every reset, it also clears the mappings a test added to <see cref="Server"/>.
    /// </summary>
    public void Respond(Func<SlackCall, (int Status, string Body, int? RetryAfter)?> behaviour)
    {
        Server.Reset();
        _respond = behaviour;
    }

    /// <summary>Answers the calls <paramref name="which"/> picks only after <paramref name="delay"/>; a post still reaches the channel at once.</summary>
    public void Slow(TimeSpan delay, Func<SlackCall, bool> which) => _slow = new Slowness(delay, which);

    /// <summary>Answers conversations.history and conversations.replies with ok:false and this error (e.g. missing_scope); null: answer normally.</summary>
    public void FailHistory(string? error) => _historyError = error;

    /// <summary>Channels that exist without having been posted to (conversations.list lists them).</summary>
    public void AddChannels(params IEnumerable<string> names)
    {
        lock (_lock)
            foreach (var name in names)
                _channels[ChannelIdOf(name)] = name.TrimStart('#');
    }

    /// <summary>The id the stand-in gives a channel name (an id it already knows stays as it is).</summary>
    public string ChannelIdOf(string channel)
    {
        lock (_lock)
            return _channels.ContainsKey(channel) ? channel : "C" + channel.TrimStart('#').ToUpperInvariant();
    }

    /// <summary>A channel's top-level messages (by id), oldest first, each with its thread replies.</summary>
    public IReadOnlyList<SlackThread> Threads(string channelId)
    {
        lock (_lock)
        {
            var inChannel = _messages.Where(m => m.ChannelId == channelId).ToList();
            var replies = inChannel.Where(m => m.IsReply).ToLookup(m => m.ThreadTs!, StringComparer.Ordinal);
            return inChannel.Where(m => !m.IsReply).Select(m => new SlackThread(m, replies[m.Ts].ToList())).ToList();
        }
    }

    /// <summary>Waits for the first write that matches, among those already made and those to come (after the first <paramref name="skip"/>).</summary>
    public Task<SlackCall> WaitForCallAsync(Func<SlackCall, bool> match, TimeSpan timeout, string what, int skip = 0) =>
        WaitForAsync(() => Calls, match, timeout, what, skip);

    /// <summary>Waits for the first incoming-webhook post that matches (after the first <paramref name="skip"/>).</summary>
    public Task<SlackWebhookPost> WaitForWebhookPostAsync(Func<SlackWebhookPost, bool> match, TimeSpan timeout, string what, int skip = 0) =>
        WaitForAsync(() => WebhookPosts, match, timeout, what, skip);

    public void Clear() => _calls.Clear();

    public void Dispose() => Server.Stop();

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task<bool> AnswerAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "";
        var receivedAt = Stopwatch.GetTimestamp();
        if (path.StartsWith(WebhookPath, StringComparison.Ordinal) && HttpMethods.IsPost(context.Request.Method))
        {
            using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
            _webhooks.Enqueue(new SlackWebhookPost(path[WebhookPath.Length..], await reader.ReadToEndAsync(context.RequestAborted), receivedAt));
            context.Response.ContentType = "text/plain";
            await context.Response.WriteAsync("ok", context.RequestAborted);
            return true;
        }
        if (!path.StartsWith(ApiPath, StringComparison.Ordinal)) return false;
        var method = path[ApiPath.Length..];
        if (method == "auth.test")
        {
            if (!AnswersAuthTest) return false;
            // The token is good. Not a change anyone waits on.
            await VendorServer.WriteJsonAsync(context, 200,
                new JsonObject { ["ok"] = true, ["team"] = "b25-stand-in", ["user"] = "b25-alerting", ["user_id"] = "UB25ALERT" }.ToJsonString());
            return true;
        }
        var write = WriteMethods.Contains(method);
        if (write ? !HttpMethods.IsPost(context.Request.Method) : !ReadMethods.Contains(method)) return false;

        Interlocked.Increment(ref _changes);
        var args = await ReadArgumentsAsync(context);
        var authorization = context.Request.Headers.Authorization is { Count: > 0 } auth ? auth.ToString() : null;
        if (Strict && authorization?.StartsWith("Bearer ", StringComparison.Ordinal) != true)
        {
            await VendorServer.WriteJsonAsync(context, 200, Error("not_authed"));
            return true;
        }
        if (write)
        {
            await WriteAsync(context, new SlackCall(method, args, authorization) { ReceivedAt = receivedAt });
            return true;
        }
        var read = new SlackCall(method, args, authorization, Answered: true) { ReceivedAt = receivedAt };
        _reads.Enqueue(read);
        await SlowDown(context, read);
        await VendorServer.WriteJsonAsync(context, 200, method == "conversations.list" ? ListChannels(args) : History(method, args));
        return true;
    }

    private async Task WriteAsync(HttpContext context, SlackCall call)
    {
        string? channel;
        lock (_lock) channel = Find(Str(call.Body, "channel") ?? "");
        if (channel is null)
        {
            _calls.Enqueue(call);
            await VendorServer.WriteJsonAsync(context, 200, Error("channel_not_found"));
            return;
        }
        var log = _callLogs.GetOrAdd(channel, _ => new CallLog());
        var now = Clock.Elapsed.TotalSeconds;
        var poster = Poster(call.Authorization);
        log.Arrived(now, poster);
        try { await WriteAsync(context, call, channel, log, now, poster); }
        finally { log.Completed(); }
    }

    private async Task WriteAsync(HttpContext context, SlackCall call, string channel, CallLog log, double now, string poster)
    {
        if (_respond(call) is { } failure)
        {
            _calls.Enqueue(call);
            await VendorServer.WriteJsonAsync(context, failure.Status, failure.Body, failure.RetryAfter);
            return;
        }
        var faults = Faults;
        var fault = faults.Draw();
        if (fault is { } counted) Counter.Add($"slack {VendorFaults.Name(counted)}");
        switch (fault)
        {
            case FaultKind.RateLimited:
                _calls.Enqueue(call);
                await VendorServer.WriteJsonAsync(context, 429, Error("ratelimited"), faults.RetryAfterSeconds);
                await context.Response.CompleteAsync();
                // A client that hung up (timed out) before the 429 was answered never read its Retry-After: it binds nothing.
                if (!context.RequestAborted.IsCancellationRequested)
                    log.RetryAfterGiven(now, Clock.Elapsed.TotalSeconds, faults.RetryAfterSeconds, poster);
                return;
            case FaultKind.ServerError:
                _calls.Enqueue(call);
                context.Response.StatusCode = Random.Shared.Next(2) == 0 ? 500 : 503;
                try { await context.Response.WriteAsync("upstream error", context.RequestAborted); }
                catch (OperationCanceledException) { }
                return;
            case FaultKind.ResetBefore:
                _calls.Enqueue(call);
                context.Abort();
                return;
        }

        JsonObject answer;
        lock (_lock) answer = call.Method == "chat.postMessage" ? Post(channel, call, poster) : Update(channel, call);
        var kept = answer["ok"]!.GetValue<bool>();
        _calls.Enqueue(kept ? call with { Answered = true, Ts = answer["ts"]!.GetValue<string>() } : call);

        // Slack has acted on the call; a slow answer or a reset only keeps the caller from learning it.
        switch (fault)
        {
            case FaultKind.ResetAfter:
                context.Abort();
                return;
            case FaultKind.Slow:
                if (!await VendorServer.DelayAsync(context, faults.SlowDelay)) return;
                break;
            case null when faults.MaxLatency > TimeSpan.Zero:
                if (!await VendorServer.DelayAsync(context, faults.MaxLatency * Random.Shared.NextDouble())) return;
                break;
        }
        await SlowDown(context, call);
        await VendorServer.WriteJsonAsync(context, 200, answer.ToJsonString());
    }

    /// <summary>A channel's id by id or name; a name Slack does not know yet is a new channel unless <see cref="Strict"/>.</summary>
    private string? Find(string channel)
    {
        if (_channels.ContainsKey(channel)) return channel;
        var id = "C" + channel.TrimStart('#').ToUpperInvariant();
        if (_channels.ContainsKey(id)) return id;
        return Strict ? null : id;
    }

    private JsonObject Post(string channel, SlackCall call, string poster)
    {
        var threadTs = Str(call.Body, "thread_ts") is { Length: > 0 } t ? t : null;
        if (Strict && threadTs is not null && !_messages.Any(m => m.ChannelId == channel && m.Ts == threadTs && !m.IsReply))
            return new JsonObject { ["ok"] = false, ["error"] = "thread_not_found" };
        _channels.TryAdd(channel, (Str(call.Body, "channel") ?? channel).TrimStart('#'));
        var message = new SlackMessage(channel, NextTs(), threadTs, Str(call.Body, "text") ?? "", call.Body["metadata"]?.DeepClone() as JsonObject)
        {
            Blocks = call.Body["blocks"]?.DeepClone(),
            Poster = poster,
            KeptAtMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        };
        _messages.Add(message);
        return new JsonObject { ["ok"] = true, ["channel"] = channel, ["ts"] = message.Ts, ["message"] = Render(message, ReplyCount(message), true) };
    }

    private JsonObject Update(string channel, SlackCall call)
    {
        var ts = Str(call.Body, "ts") ?? "";
        var i = _messages.FindIndex(m => m.ChannelId == channel && m.Ts == ts);
        if (i < 0)
            return Strict ? new JsonObject { ["ok"] = false, ["error"] = "message_not_found" }
                          : new JsonObject { ["ok"] = true, ["channel"] = channel, ["ts"] = ts, ["text"] = Str(call.Body, "text") ?? "" };
        var message = _messages[i];
        _messages[i] = message = message with
        {
            Text = Str(call.Body, "text") ?? message.Text,
            Blocks = call.Body["blocks"]?.DeepClone() ?? message.Blocks,
            Metadata = call.Body["metadata"]?.DeepClone() as JsonObject ?? message.Metadata,
            Edits = message.Edits + 1,
        };
        return new JsonObject { ["ok"] = true, ["channel"] = channel, ["ts"] = message.Ts, ["text"] = message.Text };
    }

    private int ReplyCount(SlackMessage message) =>
        message.IsReply ? 0 : _messages.Count(m => m.ChannelId == message.ChannelId && m.ThreadTs == message.Ts);

    /// <summary>Holds the answer while <see cref="Slow"/> says so, or until the client hangs up (a killed service, a stopped test).</summary>
    private async Task SlowDown(HttpContext context, SlackCall call)
    {
        if (_slow is { } slow && slow.Which(call))
            await VendorServer.DelayAsync(context, slow.Delay);
    }

    private string History(string method, JsonObject query)
    {
        if (_historyError is { } error)
            return Error(error);
        var channel = Str(query, "channel") ?? "";
        var thread = Str(query, "ts");
        var inclusive = Str(query, "inclusive") is "true" or "1";
        var oldest = decimal.TryParse(Str(query, "oldest"), CultureInfo.InvariantCulture, out var o) ? o : (decimal?)null;
        var latest = decimal.TryParse(Str(query, "latest"), CultureInfo.InvariantCulture, out var l) ? l : (decimal?)null;
        var withMetadata = Str(query, "include_all_metadata") is "true" or "1";

        List<(SlackMessage Message, int Replies)> selected;
        lock (_lock)
        {
            if (!_channels.ContainsKey(channel))
                return Error("channel_not_found");
            if (method == "conversations.replies" && thread is null)
                return Error("invalid_arguments");
            var messages = method == "conversations.replies"
                // The thread: its parent, then the replies, oldest first.
                ? _messages.Where(m => m.ChannelId == channel && (m.Ts == thread || m.ThreadTs == thread)).ToList()
                // The channel: top-level messages, newest first.
                : _messages.Where(m => m.ChannelId == channel && !m.IsReply).Reverse().ToList();
            if (method == "conversations.replies" && messages.Count == 0)
                return Error("thread_not_found");
            selected = messages
                .Where(m => oldest is not { } from || (inclusive ? Ts(m.Ts) >= from : Ts(m.Ts) > from))
                .Where(m => latest is not { } to || (inclusive ? Ts(m.Ts) <= to : Ts(m.Ts) < to))
                .Select(m => (Message: m, Replies: 0)).ToList();
        }

        var (page, next) = Page(selected, query);
        lock (_lock) page = page.Select(p => (p.Message, ReplyCount(p.Message))).ToList();
        return new JsonObject
        {
            ["ok"] = true,
            ["messages"] = new JsonArray(page.Select(p => (JsonNode)Render(p.Message, p.Replies, withMetadata)).ToArray()),
            ["has_more"] = next is not null,
            ["response_metadata"] = new JsonObject { ["next_cursor"] = next ?? "" },
        }.ToJsonString();
    }

    /// <summary>A message as conversations.* return it: a thread's parent carries thread_ts and reply_count, metadata only when asked for.</summary>
    private static JsonObject Render(SlackMessage message, int replies, bool withMetadata)
    {
        var json = new JsonObject { ["type"] = "message", ["user"] = "UB25BOT", ["bot_id"] = "BB25", ["ts"] = message.Ts, ["text"] = message.Text };
        if (message.Blocks is not null) json["blocks"] = message.Blocks.DeepClone();
        if (message.ThreadTs is not null) json["thread_ts"] = message.ThreadTs;
        if (!message.IsReply && replies > 0)
        {
            json["thread_ts"] = message.Ts;
            json["reply_count"] = replies;
        }
        if (withMetadata && message.Metadata is not null) json["metadata"] = message.Metadata.DeepClone();
        return json;
    }

    private string ListChannels(JsonObject query)
    {
        List<KeyValuePair<string, string>> channels;
        lock (_lock) channels = _channels.OrderBy(c => c.Value, StringComparer.Ordinal).ToList();
        var (page, next) = Page(channels, query);
        var list = new JsonArray();
        foreach (var (id, name) in page)
            list.Add(new JsonObject { ["id"] = id, ["name"] = name, ["is_channel"] = true, ["is_archived"] = false, ["is_member"] = true });
        return new JsonObject
        {
            ["ok"] = true, ["channels"] = list, ["response_metadata"] = new JsonObject { ["next_cursor"] = next ?? "" },
        }.ToJsonString();
    }

    /// <summary>One page of the items and the cursor of the next (the offset, as Slack's cursors are opaque).</summary>
    private (List<T> Page, string? Next) Page<T>(List<T> items, JsonObject query)
    {
        var limit = int.TryParse(Str(query, "limit"), CultureInfo.InvariantCulture, out var asked) && asked > 0 ? Math.Min(asked, PageSize) : PageSize;
        var offset = Str(query, "cursor") is { } c && c.StartsWith("offset:", StringComparison.Ordinal)
            && int.TryParse(c[7..], CultureInfo.InvariantCulture, out var at) ? at : 0;
        var page = items.Skip(offset).Take(limit).ToList();
        return (page, offset + limit < items.Count ? $"offset:{offset + limit}" : null);
    }

    /// <summary>Slack's ts: the posting time in seconds.microseconds, unique and increasing. Real time, as Slack's is: the service searches the history from the time of its first attempt.</summary>
    private string NextTs()
    {
        long micros, last;
        do
        {
            last = Interlocked.Read(ref _lastTs);
            micros = Math.Max(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000, last + 1);
        } while (Interlocked.CompareExchange(ref _lastTs, micros, last) != last);
        return $"{micros / 1_000_000}.{micros % 1_000_000:D6}";
    }

    /// <summary>Arguments from the query string, a JSON body or a form body, as Slack accepts them.</summary>
    private static async Task<JsonObject> ReadArgumentsAsync(HttpContext context)
    {
        var args = new JsonObject();
        foreach (var (key, values) in context.Request.Query) args[key] = values.ToString();
        if (!HttpMethods.IsPost(context.Request.Method)) return args;
        // Large incidents post large messages; Slack's own limits are the service's to respect, not the stand-in's.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = null;
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var body = await reader.ReadToEndAsync(context.RequestAborted);
        if (body.Length == 0) return args;
        if (context.Request.ContentType?.Contains("json", StringComparison.OrdinalIgnoreCase) == true)
        {
            if (JsonNode.Parse(body) is JsonObject json)
                foreach (var (key, value) in json) args[key] = value?.DeepClone();
        }
        else
        {
            foreach (var pair in body.Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var i = pair.IndexOf('=');
                var key = Uri.UnescapeDataString((i < 0 ? pair : pair[..i]).Replace('+', ' '));
                var value = i < 0 ? "" : Uri.UnescapeDataString(pair[(i + 1)..].Replace('+', ' '));
                // blocks and metadata arrive as JSON strings in a form body.
                args[key] = key is "blocks" or "metadata" && value.Length > 0 ? JsonNode.Parse(value) : value;
            }
        }
        return args;
    }

    private static async Task<T> WaitForAsync<T>(Func<IReadOnlyList<T>> all, Func<T, bool> match, TimeSpan timeout, string what, int skip)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            var seen = all();
            if (seen.Skip(skip).FirstOrDefault(match) is { } found)
                return found;
            if (Stopwatch.GetTimestamp() > deadline)
                throw new TimeoutException($"no {what} within {timeout.TotalSeconds:0} s; the stand-in received {seen.Count}:\n" +
                                           string.Join('\n', seen.Select(c => "  " + Truncate(c!.ToString()!, 400))));
            await Task.Delay(20);
        }
    }

    private static string Truncate(string s, int max) => s.Length <= max ? s : s[..max] + "…";

    private static string? Str(JsonObject args, string key) =>
        args[key] is JsonValue v ? (v.TryGetValue<string>(out var s) ? s : v.ToJsonString()) : null;

    /// <summary>The last part of the caller's bot token: a replica's name when each replica has its own token.</summary>
    private static string Poster(string? authorization) =>
        authorization?.StartsWith("Bearer ", StringComparison.Ordinal) == true ? authorization["Bearer ".Length..].Split('-')[^1] : "";

    private static string Error(string error) => new JsonObject { ["ok"] = false, ["error"] = error }.ToJsonString();

    private static decimal Ts(string ts) => decimal.Parse(ts, CultureInfo.InvariantCulture);

    private sealed record Slowness(TimeSpan Delay, Func<SlackCall, bool> Which);
}

public sealed record SlackCall(string Method, JsonObject Body, string? Authorization, bool Answered = false, string? Ts = null)
{
    /// <summary>When the call reached the stand-in (<see cref="Stopwatch.GetTimestamp"/>).</summary>
    public long ReceivedAt { get; init; }

    public string Channel => Body["channel"]!.GetValue<string>();
    public string Text => Body["text"]?.GetValue<string>() ?? "";
    public string? ThreadTs => Body["thread_ts"]?.GetValue<string>();
    public string? MessageTs => Body["ts"]?.GetValue<string>();
    public JsonArray? Blocks => Body["blocks"] as JsonArray;
    public JsonObject? Metadata => Body["metadata"] as JsonObject;
    public string Raw => Body.ToJsonString();

    public override string ToString() => $"{Method} {Raw}";
}

/// <summary>A message as Slack keeps it: in a channel (by id), a thread reply when it has a ThreadTs.</summary>
public sealed record SlackMessage(string ChannelId, string Ts, string? ThreadTs, string Text, JsonObject? Metadata)
{
    public bool IsReply => ThreadTs is not null;

    public JsonNode? Blocks { get; init; }

    /// <summary>How often chat.update changed it.</summary>
    public int Edits { get; init; }

    /// <summary>Who posted it: the bot token's last part (each replica of a cluster has its own token).</summary>
    public string Poster { get; init; } = "";

    /// <summary>When the stand-in kept it, unix ms (the machine's clock, as the service's records).</summary>
    public long KeptAtMs { get; init; }
}

/// <summary>A top-level message and its thread replies, oldest first.</summary>
public sealed record SlackThread(SlackMessage Top, IReadOnlyList<SlackMessage> Replies);

/// <summary>A channel Slack knows, and the chat.* calls it received.</summary>
public sealed record SlackChannel(string Id, string Name, CallLog Calls);

/// <summary>A post to an incoming webhook: its name (the URL's last part), the body as sent, when it arrived (<see cref="Stopwatch.GetTimestamp"/>).</summary>
public sealed record SlackWebhookPost(string Name, string Body, long ReceivedAt)
{
    public override string ToString() => $"/services/{Name} {Body}";
}
