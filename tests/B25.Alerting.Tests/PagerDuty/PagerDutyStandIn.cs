using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;
using WireMock.Settings;
using B25.Alerting.Tests.Support;

namespace B25.Alerting.Tests.PagerDuty;

/// <summary>
/// PagerDuty's Events API v2 as WireMock: POST /v2/enqueue answers 202 like PagerDuty, and every event
/// the service sent is kept for assertions. Behaviour can be switched per test (400, 429, 5xx).
/// </summary>
public sealed class PagerDutyStandIn : IDisposable
{
    private readonly ConcurrentQueue<PagerDutyEvent> _events = new();

    public PagerDutyStandIn()
    {
        Server = WireMockServer.Start(new WireMockServerSettings { Urls = ["http://127.0.0.1:0"] });
        Respond(_ => null);
    }

    public WireMockServer Server { get; }

    public string EventsUrl => Server.Urls[0] + "/v2/enqueue";

    /// <summary>Every call, answered or refused, in arrival order.</summary>
    public IReadOnlyList<PagerDutyEvent> Calls => _events.ToArray();

    /// <summary>Events PagerDuty accepted (202).</summary>
    public IReadOnlyList<PagerDutyEvent> Accepted => Calls.Where(e => e.Answered).ToList();

    public IReadOnlyList<PagerDutyEvent> Triggers => Accepted.Where(e => e.Action == "trigger").ToList();

    public IReadOnlyList<PagerDutyEvent> Resolves => Accepted.Where(e => e.Action == "resolve").ToList();

    /// <summary>Sets how events are answered: null for 202, or (status, body, retryAfter seconds) to refuse.</summary>
    public void Respond(Func<PagerDutyEvent, (int Status, string Body, int? RetryAfter)?> behaviour)
    {
        Server.Reset();
        Server.Given(Request.Create().WithPath("/v2/enqueue").UsingPost())
            .RespondWith(Response.Create().WithCallback(request =>
            {
                var call = new PagerDutyEvent(JsonNode.Parse(request.Body ?? "{}")!.AsObject(), request.Body?.Length ?? 0)
                {
                    Bytes = request.BodyAsBytes?.Length ?? System.Text.Encoding.UTF8.GetByteCount(request.Body ?? ""),
                };
                if (behaviour(call) is { } f)
                {
                    _events.Enqueue(call);
                    return StandInResponse.Json(f.Status, f.Body, f.RetryAfter);
                }
                _events.Enqueue(call with { Answered = true });
                return StandInResponse.Json(202,
                    new JsonObject { ["status"] = "success", ["message"] = "Event processed", ["dedup_key"] = call.DedupKey }.ToJsonString());
            }));
    }

    public void Dispose() => Server.Stop();
}

public sealed record PagerDutyEvent(JsonObject Body, int Length, bool Answered = false)
{
    /// <summary>The size of the body as sent: UTF-8 bytes.</summary>
    public int Bytes { get; init; }

    public string Action => Body["event_action"]!.GetValue<string>();
    public string RoutingKey => Body["routing_key"]!.GetValue<string>();
    public string DedupKey => Body["dedup_key"]?.GetValue<string>() ?? "";
    public JsonObject? Payload => Body["payload"] as JsonObject;
    public string Summary => Payload?["summary"]?.GetValue<string>() ?? "";
    public string Severity => Payload?["severity"]?.GetValue<string>() ?? "";
    public IReadOnlyList<string> LinkHrefs => (Body["links"] as JsonArray ?? []).Select(l => l!["href"]!.GetValue<string>()).ToList();
}
