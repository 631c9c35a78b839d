using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace B25.FaultSuite;

/// <summary>
/// PagerDuty Events API v2 stand-in on Kestrel (127.0.0.1, a free port): POST /v2/enqueue answers 202
/// {"status":"success","dedup_key":...} and records the accepted event; faults (429 with or without Retry-After, 5xx,
/// slow: accepted and answered after the client's timeout) are drawn per call from <see cref="Faults"/>.
/// </summary>
internal sealed class PagerDutyStandIn : IAsyncDisposable
{
    /// <summary>An accepted event, in acceptance order.</summary>
    public sealed record Event(long Seq, string RoutingKey, string Action, string DedupKey, string Body)
    {
        /// <summary>When the stand-in accepted it, unix ms.</summary>
        public long AtMs { get; init; } = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        /// <summary>The replica that sent it (the replica scenarios name it in the events URL), or null.</summary>
        public string? Caller { get; init; }
        /// <summary>Unix ms when the request reached the stand-in's handler (before its body was read).</summary>
        public long ArrivedMs { get; init; }
        /// <summary>The client had hung up (timed out) by the time it was answered: it cannot know the event was accepted.</summary>
        public bool ClientGone { get; set; }
    }

    private readonly WebApplication _app;
    private readonly Stopwatch _clock;
    private readonly List<Event> _events = [];
    private readonly Dictionary<string, CallLog> _calls = [];
    private long _changes;

    public VendorFaults Faults { get; set; } = VendorFaults.None;
    public FaultCounter Counter { get; set; } = new();
    public string EventsUrl { get; private set; } = "";
    public long Changes => Interlocked.Read(ref _changes);

    private PagerDutyStandIn(WebApplication app, Stopwatch clock)
    {
        _app = app;
        _clock = clock;
    }

    public static async Task<PagerDutyStandIn> StartAsync(Stopwatch clock)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var standIn = new PagerDutyStandIn(app, clock);
        app.MapPost("/v2/enqueue", (Delegate)standIn.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        standIn.EventsUrl = address.TrimEnd('/') + "/v2/enqueue";
        return standIn;
    }

    public List<Event> Events() { lock (_events) return [.. _events]; }
    public List<CallLog> Calls() { lock (_events) return [.. _calls.Values]; }

    private async Task HandleAsync(HttpContext context)
    {
        Interlocked.Increment(ref _changes);
        var arrivedMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var body = await reader.ReadToEndAsync(context.RequestAborted);
        string routingKey, action, dedupKey;
        try
        {
            using var json = JsonDocument.Parse(body);
            routingKey = json.RootElement.GetProperty("routing_key").GetString() ?? "";
            action = json.RootElement.GetProperty("event_action").GetString() ?? "";
            dedupKey = json.RootElement.TryGetProperty("dedup_key", out var k) ? k.GetString() ?? "" : "";
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            context.Response.StatusCode = 400;
            await context.Response.WriteAsync("{\"status\":\"invalid event\",\"message\":\"Event object is invalid\"}");
            return;
        }
        var now = _clock.Elapsed.TotalSeconds;
        CallLog log;
        lock (_events)
        {
            if (!_calls.TryGetValue(routingKey, out log!)) _calls[routingKey] = log = new CallLog();
        }
        // Replicas name themselves in the query string of their events URL (the replica scenarios).
        var caller = context.Request.Query["replica"].FirstOrDefault();
        log.Arrived(now, caller);
        try { await AnswerAsync(context, log, now, arrivedMs, caller, routingKey, action, dedupKey, body); }
        finally { log.Completed(); }
    }

    private async Task AnswerAsync(HttpContext context, CallLog log, double now, long arrivedMs, string? caller, string routingKey, string action,
        string dedupKey, string body)
    {
        var f = Faults;
        var r = Random.Shared.NextDouble();
        if (r < f.RateLimited)
        {
            context.Response.StatusCode = 429;
            var withRetryAfter = Random.Shared.NextDouble() < f.RetryAfterShare;
            if (withRetryAfter) context.Response.Headers.RetryAfter = f.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
            Counter.Add(withRetryAfter ? "pagerduty 429 with Retry-After" : "pagerduty 429 without Retry-After");
            await context.Response.WriteAsync("{\"status\":\"throttle event\",\"message\":\"Requests for this service are arriving too quickly.\"}");
            await context.Response.CompleteAsync();
            // A client that hung up (timed out) before the 429 was answered never read its Retry-After: it binds nothing.
            if (withRetryAfter && !context.RequestAborted.IsCancellationRequested)
                log.RetryAfterGiven(now, _clock.Elapsed.TotalSeconds, f.RetryAfterSeconds, caller);
            return;
        }
        if (r < f.RateLimited + f.ServerError)
        {
            Counter.Add("pagerduty 5xx");
            context.Response.StatusCode = Random.Shared.Next(2) == 0 ? 500 : 502;
            await context.Response.WriteAsync("internal error");
            return;
        }
        var accepted = new Event(0, routingKey, action, dedupKey, body) { Caller = caller, ArrivedMs = arrivedMs };
        lock (_events) _events.Add(accepted = accepted with { Seq = _events.Count + 1 });
        if (r < f.RateLimited + f.ServerError + f.Slow)
        {
            // Accepted, but the answer comes after the service's PagerDuty:RequestTimeout: it cannot know.
            Counter.Add("pagerduty slow");
            try { await Task.Delay(f.SlowDelay, context.RequestAborted); }
            catch (OperationCanceledException)
            {
                accepted.ClientGone = true;
                return;
            }
        }
        context.Response.StatusCode = 202;
        context.Response.ContentType = "application/json";
        try
        {
            await context.Response.WriteAsync(
                $"{{\"status\":\"success\",\"message\":\"Event processed\",\"dedup_key\":{JsonSerializer.Serialize(dedupKey)}}}", context.RequestAborted);
        }
        finally
        {
            if (context.RequestAborted.IsCancellationRequested) accepted.ClientGone = true;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
