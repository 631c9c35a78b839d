using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using WireMock.Server;

namespace B25.StandIns;

/// <summary>
/// PagerDuty's Events API v2 on 127.0.0.1: POST /v2/enqueue answers 202 like PagerDuty, and every event the service sent
/// is kept for assertions. Behaviour can be switched per test (<see cref="Respond"/>: 400, 429, 5xx), or per call by
/// chance (<see cref="Faults"/>: 429 with or without Retry-After, 5xx, slow: accepted and answered after the client's
/// timeout), each event logged per routing key (<see cref="CallLogs"/>) to check Retry-After.
/// </summary>
public sealed class PagerDutyStandIn : IDisposable, IAsyncDisposable
{
    private const string EnqueuePath = "/v2/enqueue";

    private readonly Lock _lock = new();
    private readonly List<PagerDutyEvent> _events = [];
    private readonly ConcurrentDictionary<string, CallLog> _callLogs = new(StringComparer.Ordinal); // routing key -> its events
    private volatile Func<PagerDutyEvent, (int Status, string Body, int? RetryAfter)?> _respond = _ => null;
    private int _accepted;
    private long _changes;

    public PagerDutyStandIn()
    {
        Server = VendorServer.Start(AnswerAsync);
    }

    /// <summary>The host; paths other than /v2/enqueue reach its mappings.</summary>
    public WireMockServer Server { get; }

    public string EventsUrl => Server.Urls[0] + EnqueuePath;

    /// <summary>The clock of the call logs (<see cref="CallLog"/> instants are its seconds).</summary>
    public Stopwatch Clock { get; init; } = Stopwatch.StartNew();

    /// <summary>The faults events meet, drawn per call; switchable while the service runs.</summary>
    public VendorFaults Faults { get; set; } = VendorFaults.None;

    /// <summary>Counts the faults drawn ("pagerduty 5xx", ...).</summary>
    public FaultCounter Counter { get; set; } = new();

    /// <summary>Grows with every call: what "nothing changed for a while" watches.</summary>
    public long Changes => Interlocked.Read(ref _changes);

    /// <summary>Every call, answered or refused, in arrival order.</summary>
    public IReadOnlyList<PagerDutyEvent> Calls
    {
        get { lock (_lock) return _events.ToList(); }
    }

    /// <summary>Events PagerDuty accepted (202), in acceptance order (<see cref="PagerDutyEvent.Seq"/>).</summary>
    public IReadOnlyList<PagerDutyEvent> Accepted => Calls.Where(e => e.Answered).ToList();

    public IReadOnlyList<PagerDutyEvent> Triggers => Accepted.Where(e => e.Action == "trigger").ToList();

    public IReadOnlyList<PagerDutyEvent> Resolves => Accepted.Where(e => e.Action == "resolve").ToList();

    /// <summary>The events each routing key received.</summary>
    public IReadOnlyList<CallLog> CallLogs => _callLogs.Values.ToList();

    /// <summary>
    /// Sets how events are answered: null for 202, or (status, body, retryAfter seconds) to refuse.
    /// Like every reset, it also clears the mappings a test added to <see cref="Server"/>.
    /// </summary>
    public void Respond(Func<PagerDutyEvent, (int Status, string Body, int? RetryAfter)?> behaviour)
    {
        Server.Reset();
        _respond = behaviour;
    }

    public void Dispose() => Server.Stop();

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task<bool> AnswerAsync(HttpContext context)
    {
        if (context.Request.Path.Value != EnqueuePath || !HttpMethods.IsPost(context.Request.Method)) return false;
        Interlocked.Increment(ref _changes);
        var arrivedMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        using var bytes = new MemoryStream();
        await context.Request.Body.CopyToAsync(bytes, context.RequestAborted);
        var body = Encoding.UTF8.GetString(bytes.GetBuffer(), 0, (int)bytes.Length);
        JsonObject json;
        string routingKey;
        try
        {
            json = JsonNode.Parse(body) as JsonObject ?? throw new JsonException("not an object");
            routingKey = json["routing_key"]?.GetValue<string>() ?? throw new JsonException("no routing_key");
            _ = json["event_action"]?.GetValue<string>() ?? throw new JsonException("no event_action");
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            await VendorServer.WriteJsonAsync(context, 400, """{"status":"invalid event","message":"Event object is invalid"}""");
            return true;
        }
        // Replicas name themselves in the query string of their events URL (the fault suite's replica scenarios).
        var caller = context.Request.Query["replica"].FirstOrDefault();
        var call = new PagerDutyEvent(json, body.Length) { Bytes = (int)bytes.Length, Raw = body, ArrivedMs = arrivedMs, Caller = caller };
        var now = Clock.Elapsed.TotalSeconds;
        var log = _callLogs.GetOrAdd(routingKey, _ => new CallLog());
        log.Arrived(now, caller);
        try { await AnswerAsync(context, call, log, now); }
        finally { log.Completed(); }
        return true;
    }

    private async Task AnswerAsync(HttpContext context, PagerDutyEvent call, CallLog log, double now)
    {
        if (_respond(call) is { } failure)
        {
            Refused(call);
            await VendorServer.WriteJsonAsync(context, failure.Status, failure.Body, failure.RetryAfter);
            return;
        }
        var faults = Faults;
        var fault = faults.Draw();
        switch (fault)
        {
            case FaultKind.RateLimited:
                Refused(call);
                var withRetryAfter = Random.Shared.NextDouble() < faults.RetryAfterShare;
                Counter.Add(withRetryAfter ? "pagerduty 429 with Retry-After" : "pagerduty 429 without Retry-After");
                await VendorServer.WriteJsonAsync(context, 429,
                    """{"status":"throttle event","message":"Requests for this service are arriving too quickly."}""",
                    withRetryAfter ? faults.RetryAfterSeconds : null);
                await context.Response.CompleteAsync();
                // A client that hung up (timed out) before the 429 was answered never read its Retry-After: it binds nothing.
                if (withRetryAfter && !context.RequestAborted.IsCancellationRequested)
                    log.RetryAfterGiven(now, Clock.Elapsed.TotalSeconds, faults.RetryAfterSeconds, call.Caller);
                return;
            case FaultKind.ServerError:
                Refused(call);
                Counter.Add("pagerduty 5xx");
                context.Response.StatusCode = Random.Shared.Next(2) == 0 ? 500 : 502;
                try { await context.Response.WriteAsync("internal error", context.RequestAborted); }
                catch (OperationCanceledException) { }
                return;
            case FaultKind.ResetBefore:
                Refused(call);
                Counter.Add($"pagerduty {VendorFaults.Name(FaultKind.ResetBefore)}");
                context.Abort();
                return;
        }

        PagerDutyEvent accepted;
        lock (_lock)
        {
            accepted = call with { Answered = true, Seq = ++_accepted, AtMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() };
            _events.Add(accepted);
        }
        switch (fault)
        {
            case FaultKind.ResetAfter:
                Counter.Add($"pagerduty {VendorFaults.Name(FaultKind.ResetAfter)}");
                accepted.ClientGone = true;
                context.Abort();
                return;
            case FaultKind.Slow:
                // Accepted, but the answer comes after the service's PagerDuty:RequestTimeout: it cannot know.
                Counter.Add("pagerduty slow");
                if (!await VendorServer.DelayAsync(context, faults.SlowDelay))
                {
                    accepted.ClientGone = true;
                    return;
                }
                break;
            case null when faults.MaxLatency > TimeSpan.Zero:
                if (!await VendorServer.DelayAsync(context, faults.MaxLatency * Random.Shared.NextDouble()))
                {
                    accepted.ClientGone = true;
                    return;
                }
                break;
        }
        await VendorServer.WriteJsonAsync(context, 202,
            new JsonObject { ["status"] = "success", ["message"] = "Event processed", ["dedup_key"] = call.DedupKey }.ToJsonString());
        if (context.RequestAborted.IsCancellationRequested) accepted.ClientGone = true;
    }

    private void Refused(PagerDutyEvent call)
    {
        lock (_lock) _events.Add(call);
    }
}

public sealed record PagerDutyEvent(JsonObject Body, int Length, bool Answered = false)
{
    /// <summary>The size of the body as sent: UTF-8 bytes.</summary>
    public int Bytes { get; init; }

    /// <summary>The body as sent.</summary>
    public string Raw { get; init; } = "";

    /// <summary>Of the accepted events, this one's place in acceptance order (1, 2, ...); 0 when refused.</summary>
    public long Seq { get; init; }

    /// <summary>Unix ms when the request reached the stand-in (before its body was read).</summary>
    public long ArrivedMs { get; init; }

    /// <summary>When the stand-in accepted it, unix ms.</summary>
    public long AtMs { get; init; }

    /// <summary>The replica that sent it (the fault suite's replica scenarios name it in the events URL), or null.</summary>
    public string? Caller { get; init; }

    /// <summary>The client had hung up (timed out) by the time it was answered: it cannot know the event was accepted.</summary>
    public bool ClientGone { get; set; }

    public string Action => Body["event_action"]!.GetValue<string>();
    public string RoutingKey => Body["routing_key"]!.GetValue<string>();
    public string DedupKey => Body["dedup_key"]?.GetValue<string>() ?? "";
    public JsonObject? Payload => Body["payload"] as JsonObject;
    public string Summary => Payload?["summary"]?.GetValue<string>() ?? "";
    public string Severity => Payload?["severity"]?.GetValue<string>() ?? "";
    public IReadOnlyList<string> LinkHrefs => (Body["links"] as JsonArray ?? []).Select(l => l!["href"]!.GetValue<string>()).ToList();
}
