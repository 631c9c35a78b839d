using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace B25.FaultSuite;

/// <summary>Probabilities of the faults a vendor stand-in answers with, drawn per call. All zero: a healthy vendor.</summary>
internal sealed record VendorFaults
{
    public static readonly VendorFaults None = new();

    /// <summary>Keep the message, answer only after <see cref="SlowDelay"/> (longer than the client's timeout).</summary>
    public double Slow { get; init; }
    /// <summary>429 with Retry-After; the message is not kept.</summary>
    public double RateLimited { get; init; }
    /// <summary>Of the 429s, the share that carries a Retry-After header (Slack always sends one; PagerDuty may not).</summary>
    public double RetryAfterShare { get; init; } = 1;
    /// <summary>5xx; not kept.</summary>
    public double ServerError { get; init; }
    /// <summary>Connection aborted before the message is kept.</summary>
    public double ResetBefore { get; init; }
    /// <summary>Message kept, then the connection is aborted without an answer.</summary>
    public double ResetAfter { get; init; }
    public TimeSpan SlowDelay { get; init; } = TimeSpan.FromSeconds(2.5);
    /// <summary>Not a fault: every call that is not faulted is kept, then answered after a random delay up to this (within the client's timeout).</summary>
    public TimeSpan MaxLatency { get; init; }
    public int RetryAfterSeconds { get; init; } = 1;
}

internal enum FaultKind { Slow, RateLimited, ServerError, ResetBefore, ResetAfter }

/// <summary>
/// Instants (seconds on the suite's clock) of calls and Retry-After promises for one target (a Slack channel, a PagerDuty
/// routing key). A Retry-After binds the calls the client sends after it read the 429: a call that arrives after the 429
/// was answered and before the Retry-After (counted from the 429 call's arrival, 100 ms of slack) has passed is a
/// violation. Calls that arrived before the 429 was answered were already on their way: not violations, but counted.
/// A 429 answered to a client that had already hung up (its timeout passed while the stand-in was slow to answer, as on
/// an overloaded machine) was never read: it sets no Retry-After here.
/// </summary>
internal sealed class CallLog
{
    private readonly List<double> _calls = [];
    private double _notBefore = double.MinValue;
    private double _answeredAt = double.MaxValue;
    private int _retryAfter;
    private string? _limited;
    private int _violations;
    private int _inFlight;
    private int _maxInFlight;

    /// <summary>A few Retry-After violations described, for the progress lines.</summary>
    public List<string> Examples { get; } = [];

    /// <summary>Records a call arriving now; <see cref="Completed"/> when it has been answered.</summary>
    /// <param name="now">When it arrived.</param>
    /// <param name="caller">Who made it (a replica's name), when the stand-in can tell, for the examples.</param>
    public void Arrived(double now, string? caller = null)
    {
        lock (_calls)
        {
            _calls.Add(now);
            _maxInFlight = Math.Max(_maxInFlight, ++_inFlight);
            if (now > _answeredAt && now < _notBefore - 0.1)
            {
                _violations++;
                if (Examples.Count < 5)
                    Examples.Add($"call {now - _answeredAt:0.000} s after a 429 was answered, {_notBefore - now:0.000} s before its Retry-After ended" +
                                 $" ({_inFlight - 1} other call(s) in flight)" +
                                 (caller is null && _limited is null ? "" : $"; this call by {caller ?? "?"}, the 429 (Retry-After: {_retryAfter}) to {_limited ?? "?"}") +
                                 $"; at {now:0.000} s on the suite's clock");
            }
        }
    }

    /// <summary>The call has been answered (or aborted).</summary>
    public void Completed()
    {
        lock (_calls) _inFlight--;
    }

    /// <summary>A 429 to a call that arrived at <paramref name="arrivedAt"/> was answered at <paramref name="answeredAt"/>.</summary>
    public void RetryAfterGiven(double arrivedAt, double answeredAt, int seconds, string? caller = null)
    {
        lock (_calls)
        {
            if (arrivedAt + seconds > _notBefore)
            {
                _notBefore = arrivedAt + seconds;
                _answeredAt = answeredAt;
                _retryAfter = seconds;
                _limited = caller;
            }
        }
    }

    public int Violations { get { lock (_calls) return _violations; } }
    public int Count { get { lock (_calls) return _calls.Count; } }
    /// <summary>Most calls in flight at once on this target.</summary>
    public int MaxInFlight { get { lock (_calls) return _maxInFlight; } }

    /// <summary>Most calls in any window of one second.</summary>
    public int MaxPerSecond()
    {
        double[] calls;
        lock (_calls) calls = [.. _calls];
        Array.Sort(calls);
        int best = 0, start = 0;
        for (var i = 0; i < calls.Length; i++)
        {
            while (calls[i] - calls[start] >= 1.0) start++;
            best = Math.Max(best, i - start + 1);
        }
        return best;
    }
}

/// <summary>Counts of injected faults by kind, shared by every injector of a scenario.</summary>
internal sealed class FaultCounter
{
    private readonly Dictionary<string, int> _counts = [];

    public void Add(string kind, int n = 1)
    {
        lock (_counts) _counts[kind] = _counts.GetValueOrDefault(kind) + n;
    }

    public Dictionary<string, int> Snapshot() { lock (_counts) return new(_counts); }
    public int Total { get { lock (_counts) return _counts.Values.Sum(); } }
}

/// <summary>
/// Slack Web API stand-in on Kestrel (127.0.0.1, a free port) that behaves like Slack where the service depends on it:
/// chat.postMessage keeps the message (top level or in a thread) with a fresh ts and its metadata, chat.update edits it,
/// conversations.history / conversations.replies / conversations.list read it back with cursor paging, metadata only
/// with include_all_metadata. Faults on chat.* calls are drawn per call from <see cref="Faults"/>, switchable at run time.
/// </summary>
internal sealed class SlackStandIn : IAsyncDisposable
{
    public sealed class Message
    {
        public required string Ts { get; init; }
        public string? ThreadTs { get; init; }
        public string Text { get; set; } = "";
        public JsonNode? Blocks { get; set; }
        public JsonNode? Metadata { get; set; }
        public int Edits { get; set; }
        public List<Message> Replies { get; } = [];
        /// <summary>Who posted it: the bot token's last part (each replica of a cluster has its own token).</summary>
        public string Poster { get; init; } = "";
        /// <summary>When the stand-in kept it, unix ms (the machine's clock, as the service's records).</summary>
        public long KeptAtMs { get; init; }
    }

    public sealed class Channel(string id, string name)
    {
        public string Id { get; } = id;
        public string Name { get; } = name;
        /// <summary>Every message in post order (top level and replies).</summary>
        public List<Message> Messages { get; } = [];
        public CallLog Calls { get; } = new();
    }

    private readonly WebApplication _app;
    private readonly Dictionary<string, Channel> _byId = [];
    private readonly Dictionary<string, Channel> _byName = [];
    private readonly Lock _lock = new();
    private readonly Stopwatch _clock;
    private long _seq;
    private long _changes;

    public VendorFaults Faults { get; set; } = VendorFaults.None;
    public FaultCounter Counter { get; set; } = new();
    public string ApiBaseUrl { get; private set; } = "";
    /// <summary>Grows with every call that reached the stand-in: what "nothing changed for a while" watches.</summary>
    public long Changes => Interlocked.Read(ref _changes);

    private SlackStandIn(WebApplication app, Stopwatch clock)
    {
        _app = app;
        _clock = clock;
    }

    public static async Task<SlackStandIn> StartAsync(IEnumerable<string> channelNames, Stopwatch clock)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = null);
        var app = builder.Build();
        var standIn = new SlackStandIn(app, clock);
        foreach (var name in channelNames) standIn.AddChannel(name);
        app.Map("/api/{method}", (Delegate)standIn.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        standIn.ApiBaseUrl = address.TrimEnd('/') + "/api/";
        return standIn;
    }

    private void AddChannel(string name)
    {
        name = name.TrimStart('#');
        var id = "C" + new string(name.ToUpperInvariant().Where(char.IsAsciiLetterOrDigit).ToArray());
        var channel = new Channel(id, name);
        _byId[id] = channel;
        _byName[name] = channel;
    }

    public IReadOnlyList<Channel> Channels() { lock (_lock) return [.. _byId.Values]; }

    /// <summary>A consistent copy of one channel's messages (top level with their replies).</summary>
    public List<(Message Top, List<Message> Replies, string Text, string Blocks)> TopLevel(Channel channel)
    {
        lock (_lock)
            return channel.Messages.Where(m => m.ThreadTs is null)
                .Select(m => (m, m.Replies.ToList(), m.Text, m.Blocks?.ToJsonString() ?? "")).ToList();
    }

    private Channel? Find(string? channel)
    {
        if (string.IsNullOrEmpty(channel)) return null;
        lock (_lock)
            return _byId.GetValueOrDefault(channel) ?? _byName.GetValueOrDefault(channel.TrimStart('#'));
    }

    private async Task HandleAsync(HttpContext context, string method)
    {
        if (method == "auth.test")
        {
            // The service's readiness check: the token is good. Not a change the suite waits on.
            await AnswerAsync(context, new JsonObject { ["ok"] = true, ["team"] = "fault-suite", ["user"] = "b25-alerting", ["user_id"] = "UFAULTS" });
            return;
        }
        Interlocked.Increment(ref _changes);
        var args = await ReadArgumentsAsync(context);
        if (!context.Request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.Ordinal))
        {
            await AnswerAsync(context, new JsonObject { ["ok"] = false, ["error"] = "not_authed" });
            return;
        }
        switch (method)
        {
            case "chat.postMessage":
            case "chat.update":
                await WriteAsync(context, method, args);
                break;
            case "conversations.history":
                await AnswerAsync(context, History(args));
                break;
            case "conversations.replies":
                await AnswerAsync(context, Replies(args));
                break;
            case "conversations.list":
                await AnswerAsync(context, List(args));
                break;
            default:
                await AnswerAsync(context, new JsonObject { ["ok"] = false, ["error"] = "unknown_method" });
                break;
        }
    }

    /// <summary>Arguments from the query string, a JSON body or a form body, as Slack accepts them.</summary>
    private static async Task<JsonObject> ReadArgumentsAsync(HttpContext context)
    {
        var args = new JsonObject();
        foreach (var (k, v) in context.Request.Query) args[k] = v.ToString();
        if (!HttpMethods.IsPost(context.Request.Method)) return args;
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var body = await reader.ReadToEndAsync(context.RequestAborted);
        if (body.Length == 0) return args;
        if (context.Request.ContentType?.Contains("json", StringComparison.OrdinalIgnoreCase) == true)
        {
            if (JsonNode.Parse(body) is JsonObject json)
                foreach (var (k, v) in json) args[k] = v?.DeepClone();
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

    private static string? Str(JsonObject args, string key) =>
        args[key] is JsonValue v ? (v.TryGetValue<string>(out var s) ? s : v.ToJsonString()) : null;

    private static bool Flag(JsonObject args, string key) =>
        args[key] is JsonValue v && (v.TryGetValue<bool>(out var b) ? b : Str(args, key) is "true" or "1");

    /// <summary>The last part of the caller's bot token: a replica's name in the replica scenarios ("suite" alone).</summary>
    private static string Poster(HttpContext context) => context.Request.Headers.Authorization.ToString()["Bearer ".Length..].Split('-')[^1];

    private FaultKind? Draw(VendorFaults f)
    {
        var r = Random.Shared.NextDouble();
        if ((r -= f.Slow) < 0) return FaultKind.Slow;
        if ((r -= f.RateLimited) < 0) return FaultKind.RateLimited;
        if ((r -= f.ServerError) < 0) return FaultKind.ServerError;
        if ((r -= f.ResetBefore) < 0) return FaultKind.ResetBefore;
        if ((r -= f.ResetAfter) < 0) return FaultKind.ResetAfter;
        return null;
    }

    private async Task WriteAsync(HttpContext context, string method, JsonObject args)
    {
        var channel = Find(Str(args, "channel"));
        if (channel is null)
        {
            await AnswerAsync(context, new JsonObject { ["ok"] = false, ["error"] = "channel_not_found" });
            return;
        }
        var now = _clock.Elapsed.TotalSeconds;
        channel.Calls.Arrived(now, Poster(context));
        try { await WriteAsync(context, method, args, channel, now); }
        finally { channel.Calls.Completed(); }
    }

    private async Task WriteAsync(HttpContext context, string method, JsonObject args, Channel channel, double now)
    {
        var faults = Faults;
        var fault = Draw(faults);
        if (fault is { } counted) Counter.Add($"slack {Name(counted)}");
        switch (fault)
        {
            case FaultKind.RateLimited:
                context.Response.StatusCode = 429;
                context.Response.Headers.RetryAfter = faults.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
                await AnswerAsync(context, new JsonObject { ["ok"] = false, ["error"] = "ratelimited" });
                await context.Response.CompleteAsync();
                // A client that hung up (timed out) before the 429 was answered never read its Retry-After: it binds nothing.
                if (!context.RequestAborted.IsCancellationRequested)
                    channel.Calls.RetryAfterGiven(now, _clock.Elapsed.TotalSeconds, faults.RetryAfterSeconds, Poster(context));
                return;
            case FaultKind.ServerError:
                context.Response.StatusCode = Random.Shared.Next(2) == 0 ? 500 : 503;
                await context.Response.WriteAsync("upstream error", context.RequestAborted);
                return;
            case FaultKind.ResetBefore:
                context.Abort();
                return;
        }

        JsonObject answer;
        var poster = Poster(context);
        lock (_lock)
            answer = method == "chat.postMessage" ? Post(channel, args, poster) : Update(channel, args);

        switch (fault)
        {
            case FaultKind.ResetAfter:
                context.Abort();
                return;
            case FaultKind.Slow:
                try { await Task.Delay(faults.SlowDelay, context.RequestAborted); }
                catch (OperationCanceledException) { return; }
                break;
            case null when faults.MaxLatency > TimeSpan.Zero:
                try { await Task.Delay(faults.MaxLatency * Random.Shared.NextDouble(), context.RequestAborted); }
                catch (OperationCanceledException) { return; }
                break;
        }
        await AnswerAsync(context, answer);
    }

    public static string Name(FaultKind kind) => kind switch
    {
        FaultKind.Slow => "slow",
        FaultKind.RateLimited => "429",
        FaultKind.ServerError => "5xx",
        FaultKind.ResetBefore => "reset before keeping",
        FaultKind.ResetAfter => "reset after keeping",
        _ => kind.ToString(),
    };

    private long _lastMicros;

    private string NextTs()
    {
        Interlocked.Increment(ref _seq);
        // Slack's ts: the posting time in seconds.microseconds, unique and increasing. It is real time, as
        // Slack's is: the service searches the history from the time of its first attempt.
        long micros, last;
        do
        {
            last = Interlocked.Read(ref _lastMicros);
            micros = Math.Max(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000, last + 1);
        } while (Interlocked.CompareExchange(ref _lastMicros, micros, last) != last);
        return $"{micros / 1_000_000}.{micros % 1_000_000:D6}";
    }

    private JsonObject Post(Channel channel, JsonObject args, string poster)
    {
        var threadTs = Str(args, "thread_ts");
        Message? parent = null;
        if (!string.IsNullOrEmpty(threadTs))
        {
            parent = channel.Messages.FirstOrDefault(m => m.Ts == threadTs && m.ThreadTs is null);
            if (parent is null) return new JsonObject { ["ok"] = false, ["error"] = "thread_not_found" };
        }
        var message = new Message
        {
            Ts = NextTs(),
            ThreadTs = parent?.Ts,
            Text = Str(args, "text") ?? "",
            Blocks = args["blocks"]?.DeepClone(),
            Metadata = args["metadata"]?.DeepClone(),
            Poster = poster,
            KeptAtMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        };
        channel.Messages.Add(message);
        parent?.Replies.Add(message);
        return new JsonObject { ["ok"] = true, ["channel"] = channel.Id, ["ts"] = message.Ts, ["message"] = Render(message, true) };
    }

    private static JsonObject Update(Channel channel, JsonObject args)
    {
        var ts = Str(args, "ts");
        var message = channel.Messages.FirstOrDefault(m => m.Ts == ts);
        if (message is null) return new JsonObject { ["ok"] = false, ["error"] = "message_not_found" };
        if (Str(args, "text") is { } text) message.Text = text;
        if (args["blocks"] is { } blocks) message.Blocks = blocks.DeepClone();
        if (args["metadata"] is { } metadata) message.Metadata = metadata.DeepClone();
        message.Edits++;
        return new JsonObject { ["ok"] = true, ["channel"] = channel.Id, ["ts"] = message.Ts, ["text"] = message.Text };
    }

    private static JsonObject Render(Message m, bool withMetadata)
    {
        var json = new JsonObject { ["type"] = "message", ["user"] = "UB25BOT", ["bot_id"] = "BB25", ["ts"] = m.Ts, ["text"] = m.Text };
        if (m.Blocks is not null) json["blocks"] = m.Blocks.DeepClone();
        if (m.ThreadTs is not null) json["thread_ts"] = m.ThreadTs;
        if (m.ThreadTs is null && m.Replies.Count > 0)
        {
            json["thread_ts"] = m.Ts;
            json["reply_count"] = m.Replies.Count;
        }
        if (withMetadata && m.Metadata is not null) json["metadata"] = m.Metadata.DeepClone();
        return json;
    }

    private static int Limit(JsonObject args, int fallback, int max) =>
        int.TryParse(Str(args, "limit"), CultureInfo.InvariantCulture, out var l) && l > 0 ? Math.Min(l, max) : fallback;

    private static int Cursor(JsonObject args) =>
        Str(args, "cursor") is { Length: > 0 } c && c.StartsWith("next:", StringComparison.Ordinal)
        && int.TryParse(c[5..], CultureInfo.InvariantCulture, out var i) ? i : 0;

    private static bool InRange(string ts, JsonObject args)
    {
        var t = double.Parse(ts, CultureInfo.InvariantCulture);
        var inclusive = Flag(args, "inclusive");
        if (Str(args, "oldest") is { Length: > 0 } o && double.TryParse(o, CultureInfo.InvariantCulture, out var oldest)
            && (inclusive ? t < oldest : t <= oldest)) return false;
        if (Str(args, "latest") is { Length: > 0 } l && double.TryParse(l, CultureInfo.InvariantCulture, out var latest)
            && (inclusive ? t > latest : t >= latest)) return false;
        return true;
    }

    private static JsonObject Page(IReadOnlyList<Message> all, JsonObject args, int fallback, int max, bool metadata)
    {
        var start = Cursor(args);
        var limit = Limit(args, fallback, max);
        var page = all.Skip(start).Take(limit).ToList();
        var more = start + page.Count < all.Count;
        return new JsonObject
        {
            ["ok"] = true,
            ["messages"] = new JsonArray(page.Select(m => (JsonNode)Render(m, metadata)).ToArray()),
            ["has_more"] = more,
            ["response_metadata"] = new JsonObject { ["next_cursor"] = more ? $"next:{start + page.Count}" : "" },
        };
    }

    private JsonObject History(JsonObject args)
    {
        var channel = Find(Str(args, "channel"));
        if (channel is null) return new JsonObject { ["ok"] = false, ["error"] = "channel_not_found" };
        lock (_lock)
        {
            // Newest first, top-level messages (thread parents included), as Slack returns them.
            var all = channel.Messages.Where(m => m.ThreadTs is null && InRange(m.Ts, args)).Reverse().ToList();
            return Page(all, args, 100, 999, Flag(args, "include_all_metadata"));
        }
    }

    private JsonObject Replies(JsonObject args)
    {
        var channel = Find(Str(args, "channel"));
        if (channel is null) return new JsonObject { ["ok"] = false, ["error"] = "channel_not_found" };
        lock (_lock)
        {
            var parent = channel.Messages.FirstOrDefault(m => m.Ts == Str(args, "ts") && m.ThreadTs is null);
            if (parent is null) return new JsonObject { ["ok"] = false, ["error"] = "thread_not_found" };
            // The parent first, then the replies oldest first.
            var all = new[] { parent }.Concat(parent.Replies).Where(m => InRange(m.Ts, args)).ToList();
            return Page(all, args, 1000, 1000, Flag(args, "include_all_metadata"));
        }
    }

    private JsonObject List(JsonObject args)
    {
        List<Channel> all;
        lock (_lock) all = [.. _byId.Values.OrderBy(c => c.Name, StringComparer.Ordinal)];
        var start = Cursor(args);
        var limit = Limit(args, 100, 1000);
        var page = all.Skip(start).Take(limit).ToList();
        var more = start + page.Count < all.Count;
        return new JsonObject
        {
            ["ok"] = true,
            ["channels"] = new JsonArray(page.Select(c => (JsonNode)new JsonObject
            {
                ["id"] = c.Id, ["name"] = c.Name, ["is_channel"] = true, ["is_archived"] = false, ["is_member"] = true,
            }).ToArray()),
            ["response_metadata"] = new JsonObject { ["next_cursor"] = more ? $"next:{start + page.Count}" : "" },
        };
    }

    private static async Task AnswerAsync(HttpContext context, JsonObject answer)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        try { await context.Response.WriteAsync(answer.ToJsonString(), context.RequestAborted); }
        catch (OperationCanceledException) { }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
