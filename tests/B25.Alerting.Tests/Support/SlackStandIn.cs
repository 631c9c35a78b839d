using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;
using WireMock.Settings;

namespace B25.Alerting.Tests.Support;

/// <summary>
/// Slack's Web API as WireMock: chat.postMessage and chat.update answer ok with a fresh ts, and every
/// call the service made is kept for assertions. Behaviour can be switched per test (errors, 429).
/// </summary>
public sealed class SlackStandIn : IDisposable
{
    private long _ts = 1_732_540_000_000_100;
    private readonly ConcurrentQueue<SlackCall> _calls = new();

    public SlackStandIn()
    {
        Server = WireMockServer.Start(new WireMockServerSettings { Urls = ["http://127.0.0.1:0"] });
        Respond(_ => null);
    }

    public WireMockServer Server { get; }

    public string ApiBaseUrl => Server.Urls[0] + "/api/";

    public IReadOnlyList<SlackCall> Calls => _calls.ToArray();

    public IReadOnlyList<SlackCall> Posts => Calls.Where(c => c.Method == "chat.postMessage" && c.ThreadTs is null && c.Answered).ToList();

    public IReadOnlyList<SlackCall> Updates => Calls.Where(c => c.Method == "chat.update" && c.Answered).ToList();

    public IReadOnlyList<SlackCall> Replies => Calls.Where(c => c.Method == "chat.postMessage" && c.ThreadTs is not null && c.Answered).ToList();

    /// <summary>
    /// Sets how calls are answered: return null for the normal ok answer, or a (status, body, retryAfter) to fail.
    /// </summary>
    public void Respond(Func<SlackCall, (int Status, string Body, int? RetryAfter)?> behaviour)
    {
        Server.Reset();
        foreach (var method in new[] { "chat.postMessage", "chat.update" })
        {
            Server.Given(Request.Create().WithPath($"/api/{method}").UsingPost())
                .RespondWith(Response.Create().WithCallback(request =>
                {
                    var body = JsonNode.Parse(request.Body ?? "{}")!.AsObject();
                    var call = new SlackCall(method, body, request.Headers?.TryGetValue("Authorization", out var auth) == true ? auth.ToString() : null);
                    var failure = behaviour(call);
                    if (failure is { } f)
                    {
                        _calls.Enqueue(call with { Answered = false });
                        return StandInResponse.Json(f.Status, f.Body, f.RetryAfter);
                    }
                    var ts = method == "chat.update"
                        ? body["ts"]!.GetValue<string>()
                        : FormatTs(Interlocked.Increment(ref _ts));
                    _calls.Enqueue(call with { Answered = true, Ts = ts });
                    return StandInResponse.Json(200, new JsonObject
                    {
                        ["ok"] = true, ["channel"] = "C" + body["channel"]!.GetValue<string>().TrimStart('#').ToUpperInvariant(), ["ts"] = ts,
                    }.ToJsonString());
                }));
        }
    }

    public void Clear() => _calls.Clear();

    private static string FormatTs(long value) => $"{value / 1_000_000}.{value % 1_000_000:D6}";

    public void Dispose() => Server.Stop();
}

public sealed record SlackCall(string Method, JsonObject Body, string? Authorization, bool Answered = false, string? Ts = null)
{
    public string Channel => Body["channel"]!.GetValue<string>();
    public string Text => Body["text"]?.GetValue<string>() ?? "";
    public string? ThreadTs => Body["thread_ts"]?.GetValue<string>();
    public string? MessageTs => Body["ts"]?.GetValue<string>();
    public JsonArray? Blocks => Body["blocks"] as JsonArray;
    public string Raw => Body.ToJsonString();
}
