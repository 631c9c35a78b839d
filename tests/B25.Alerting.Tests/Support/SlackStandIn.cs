using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using WireMock;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;
using WireMock.Settings;

namespace B25.Alerting.Tests.Support;

/// <summary>
/// Slack's Web API as WireMock: chat.postMessage and chat.update answer ok with a fresh ts, and every
/// call the service made is kept for assertions. Behaviour can be switched per test (errors, 429, slow answers).
/// Like Slack, it keeps what was posted (<see cref="Messages"/>) and serves it back through
/// conversations.history and conversations.replies (with message metadata on request), and resolves channel
/// names through conversations.list. A channel "#name" has the id "C" + NAME.
/// </summary>
public sealed class SlackStandIn : IDisposable
{
    private static readonly string[] WriteMethods = ["chat.postMessage", "chat.update"];
    private static readonly string[] ReadMethods = ["conversations.history", "conversations.replies", "conversations.list"];

    // Slack message ts are the posting time (unix seconds.micros), which history searches filter on.
    private long _ts = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
    private readonly ConcurrentQueue<SlackCall> _calls = new();
    private readonly ConcurrentQueue<SlackCall> _reads = new();
    private readonly Lock _lock = new();
    private readonly List<SlackMessage> _messages = [];
    private readonly Dictionary<string, string> _channels = new(StringComparer.Ordinal); // id -> name
    private volatile Slowness? _slow;
    private volatile string? _historyError;

    public SlackStandIn()
    {
        Server = WireMockServer.Start(new WireMockServerSettings { Urls = ["http://127.0.0.1:0"] });
        Respond(_ => null);
    }

    public WireMockServer Server { get; }

    public string ApiBaseUrl => Server.Urls[0] + "/api/";

    /// <summary>The writes (chat.postMessage, chat.update) the service made.</summary>
    public IReadOnlyList<SlackCall> Calls => _calls.ToArray();

    /// <summary>The reads (conversations.*), their query parameters as the body.</summary>
    public IReadOnlyList<SlackCall> Reads => _reads.ToArray();

    public IReadOnlyList<SlackCall> Posts => Calls.Where(c => c.Method == "chat.postMessage" && c.ThreadTs is null && c.Answered).ToList();

    public IReadOnlyList<SlackCall> Updates => Calls.Where(c => c.Method == "chat.update" && c.Answered).ToList();

    public IReadOnlyList<SlackCall> Replies => Calls.Where(c => c.Method == "chat.postMessage" && c.ThreadTs is not null && c.Answered).ToList();

    /// <summary>What Slack holds, oldest first: top-level messages and thread replies (<see cref="SlackMessage.IsReply"/>).</summary>
    public IReadOnlyList<SlackMessage> Messages
    {
        get { lock (_lock) return _messages.ToList(); }
    }

    /// <summary>Messages per page of conversations.history/replies and channels per page of conversations.list (at most the limit asked for).</summary>
    public int PageSize { get; set; } = 100;

    /// <summary>
    /// Sets how calls are answered: return null for the normal ok answer, or a (status, body, retryAfter) to fail.
    /// </summary>
    public void Respond(Func<SlackCall, (int Status, string Body, int? RetryAfter)?> behaviour)
    {
        Server.Reset();
        foreach (var method in WriteMethods)
        {
            Server.Given(Request.Create().WithPath($"/api/{method}").UsingPost())
                .RespondWith(Response.Create().WithCallback(async request =>
                {
                    var body = JsonNode.Parse(request.Body ?? "{}")!.AsObject();
                    var call = new SlackCall(method, body, Authorization(request));
                    var failure = behaviour(call);
                    if (failure is { } f)
                    {
                        _calls.Enqueue(call with { Answered = false });
                        return StandInResponse.Json(f.Status, f.Body, f.RetryAfter);
                    }
                    var ts = method == "chat.update"
                        ? body["ts"]!.GetValue<string>()
                        : FormatTs(Interlocked.Increment(ref _ts));
                    var channel = Keep(method, call, ts);
                    _calls.Enqueue(call with { Answered = true, Ts = ts });
                    // Slack has acted on the call; a slow answer only keeps the caller from learning it.
                    await SlowDown(call);
                    return StandInResponse.Json(200, new JsonObject { ["ok"] = true, ["channel"] = channel, ["ts"] = ts }.ToJsonString());
                }));
        }
        foreach (var method in ReadMethods)
        {
            Server.Given(Request.Create().WithPath($"/api/{method}").UsingAnyMethod())
                .RespondWith(Response.Create().WithCallback(async request =>
                {
                    var query = new JsonObject();
                    foreach (var (key, values) in request.Query ?? new Dictionary<string, WireMock.Types.WireMockList<string>>())
                        query[key] = string.Join(",", values);
                    var call = new SlackCall(method, query, Authorization(request), Answered: true);
                    _reads.Enqueue(call);
                    await SlowDown(call);
                    return method == "conversations.list" ? ListChannels(query) : History(method, query);
                }));
        }
    }

    /// <summary>Answers the calls <paramref name="which"/> picks only after <paramref name="delay"/>; a post still reaches the channel at once.</summary>
    public void Slow(TimeSpan delay, Func<SlackCall, bool> which) => _slow = new Slowness(delay, which);

    /// <summary>Answers conversations.history and conversations.replies with ok:false and this error (e.g. missing_scope); null: answer normally.</summary>
    public void FailHistory(string? error) => _historyError = error;

    /// <summary>Channels that exist without having been posted to (conversations.list lists them).</summary>
    public void AddChannels(params string[] names)
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

    public void Clear() => _calls.Clear();

    private string Keep(string method, SlackCall call, string ts)
    {
        var channel = ChannelIdOf(call.Channel);
        lock (_lock)
        {
            _channels.TryAdd(channel, call.Channel.TrimStart('#'));
            if (method == "chat.postMessage")
            {
                _messages.Add(new SlackMessage(channel, ts, call.ThreadTs, call.Text, call.Body["metadata"]?.DeepClone() as JsonObject));
            }
            else
            {
                var i = _messages.FindIndex(m => m.ChannelId == channel && m.Ts == ts);
                if (i >= 0) _messages[i] = _messages[i] with { Text = call.Text };
            }
        }
        return channel;
    }

    private async Task SlowDown(SlackCall call)
    {
        if (_slow is { } slow && slow.Which(call))
            await Task.Delay(slow.Delay);
    }

    private ResponseMessage History(string method, JsonObject query)
    {
        if (_historyError is { } error)
            return Error(error);
        var channel = query["channel"]?.GetValue<string>() ?? "";
        var thread = query["ts"]?.GetValue<string>();
        var inclusive = query["inclusive"]?.GetValue<string>() is "true" or "1";
        var oldest = query["oldest"]?.GetValue<string>() is { } o ? Ts(o) : (decimal?)null;
        var withMetadata = query["include_all_metadata"]?.GetValue<string>() is "true" or "1";

        List<SlackMessage> selected;
        lock (_lock)
        {
            if (!_channels.ContainsKey(channel))
                return Error("channel_not_found");
            if (method == "conversations.replies" && thread is null)
                return Error("invalid_arguments");
            selected = method == "conversations.replies"
                // The thread: its parent, then the replies, oldest first.
                ? _messages.Where(m => m.ChannelId == channel && (m.Ts == thread || m.ThreadTs == thread)).ToList()
                // The channel: top-level messages, newest first.
                : _messages.Where(m => m.ChannelId == channel && !m.IsReply).Reverse().ToList();
            if (method == "conversations.replies" && selected.Count == 0)
                return Error("thread_not_found");
        }
        if (oldest is { } from)
            selected = selected.Where(m => inclusive ? Ts(m.Ts) >= from : Ts(m.Ts) > from).ToList();

        var (page, next) = Page(selected, query);
        var messages = new JsonArray();
        foreach (var message in page)
        {
            var json = new JsonObject { ["type"] = "message", ["ts"] = message.Ts, ["text"] = message.Text };
            if (message.ThreadTs is not null) json["thread_ts"] = message.ThreadTs;
            if (withMetadata && message.Metadata is not null) json["metadata"] = message.Metadata.DeepClone();
            messages.Add(json);
        }
        return StandInResponse.Json(200, new JsonObject
        {
            ["ok"] = true, ["messages"] = messages, ["has_more"] = next is not null,
            ["response_metadata"] = new JsonObject { ["next_cursor"] = next ?? "" },
        }.ToJsonString());
    }

    private ResponseMessage ListChannels(JsonObject query)
    {
        List<KeyValuePair<string, string>> channels;
        lock (_lock) channels = _channels.OrderBy(c => c.Value, StringComparer.Ordinal).ToList();
        var (page, next) = Page(channels, query);
        var list = new JsonArray();
        foreach (var (id, name) in page)
            list.Add(new JsonObject { ["id"] = id, ["name"] = name, ["is_archived"] = false });
        return StandInResponse.Json(200, new JsonObject
        {
            ["ok"] = true, ["channels"] = list, ["response_metadata"] = new JsonObject { ["next_cursor"] = next ?? "" },
        }.ToJsonString());
    }

    /// <summary>One page of the items and the cursor of the next (the offset, as Slack's cursors are opaque).</summary>
    private (List<T> Page, string? Next) Page<T>(List<T> items, JsonObject query)
    {
        var limit = query["limit"]?.GetValue<string>() is { } l && int.TryParse(l, out var asked) && asked > 0 ? Math.Min(asked, PageSize) : PageSize;
        var offset = query["cursor"]?.GetValue<string>() is { } c && c.StartsWith("offset:", StringComparison.Ordinal) ? int.Parse(c[7..], CultureInfo.InvariantCulture) : 0;
        var page = items.Skip(offset).Take(limit).ToList();
        return (page, offset + limit < items.Count ? $"offset:{offset + limit}" : null);
    }

    private static ResponseMessage Error(string error) =>
        StandInResponse.Json(200, new JsonObject { ["ok"] = false, ["error"] = error }.ToJsonString());

    private static string? Authorization(IRequestMessage request) =>
        request.Headers?.TryGetValue("Authorization", out var auth) == true ? auth.ToString() : null;

    private static decimal Ts(string ts) => decimal.Parse(ts, CultureInfo.InvariantCulture);

    private static string FormatTs(long value) => $"{value / 1_000_000}.{value % 1_000_000:D6}";

    public void Dispose() => Server.Stop();

    private sealed record Slowness(TimeSpan Delay, Func<SlackCall, bool> Which);
}

public sealed record SlackCall(string Method, JsonObject Body, string? Authorization, bool Answered = false, string? Ts = null)
{
    public string Channel => Body["channel"]!.GetValue<string>();
    public string Text => Body["text"]?.GetValue<string>() ?? "";
    public string? ThreadTs => Body["thread_ts"]?.GetValue<string>();
    public string? MessageTs => Body["ts"]?.GetValue<string>();
    public JsonArray? Blocks => Body["blocks"] as JsonArray;
    public JsonObject? Metadata => Body["metadata"] as JsonObject;
    public string Raw => Body.ToJsonString();
}

/// <summary>A message as Slack keeps it: in a channel (by id), a thread reply when it has a ThreadTs.</summary>
public sealed record SlackMessage(string ChannelId, string Ts, string? ThreadTs, string Text, JsonObject? Metadata)
{
    public bool IsReply => ThreadTs is not null;
}
