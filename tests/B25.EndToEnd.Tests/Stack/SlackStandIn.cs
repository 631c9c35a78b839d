using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace B25.EndToEnd.Tests.Stack;

/// <summary>One request the Slack stand-in received, stamped on arrival.</summary>
internal sealed record SlackCall(string Path, string? Authorization, string Body, JsonObject? Json, long ReceivedAt, string? AnsweredTs)
{
    public string? Channel => Json?["channel"]?.GetValue<string>();

    public string? Ts => Json?["ts"]?.GetValue<string>();

    public string? ThreadTs => Json?["thread_ts"]?.GetValue<string>();

    public string Text => Json?["text"]?.GetValue<string>() ?? string.Empty;

    public bool IsPostMessage => Path == "/api/chat.postMessage";

    public bool IsUpdate => Path == "/api/chat.update";

    /// <summary>A direct Alertmanager slack_configs notification (the baseline path).</summary>
    public bool IsAlertmanagerSlack => Path.StartsWith("/am-webhook/", StringComparison.Ordinal);

    public override string ToString() => $"{Path} {Body}";
}

/// <summary>
/// Stands in for slack.com: the Web API that B25.Alerting calls (chat.postMessage, chat.update,
/// answered like Slack does) and an incoming-webhook URL for Alertmanager's own slack_configs.
/// </summary>
internal sealed class SlackStandIn : IAsyncDisposable
{
    private readonly List<SlackCall> _calls = [];
    private readonly Lock _gate = new();
    private WebApplication? _app;
    private int _nextTs = 100;

    public int Port { get; private set; }

    public string ApiBaseUrl => $"http://127.0.0.1:{Port}/api/";

    public string AlertmanagerWebhookUrl(string receiver) => $"http://127.0.0.1:{Port}/am-webhook/{receiver}";

    public IReadOnlyList<SlackCall> Calls
    {
        get
        {
            lock (_gate)
            {
                return [.. _calls];
            }
        }
    }

    public async Task StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        app.MapPost("/api/{method}", HandleApiAsync);
        app.MapPost("/am-webhook/{receiver}", (Func<HttpContext, Task<IResult>>)HandleWebhookAsync);
        await app.StartAsync();
        Port = new Uri(app.Urls.First()).Port;
        _app = app;
    }

    /// <summary>Waits for the first call that matches, among those already received and those to come.</summary>
    public async Task<SlackCall> WaitForAsync(Func<SlackCall, bool> match, TimeSpan timeout, string what, int skip = 0)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            var found = Calls.Skip(skip).FirstOrDefault(match);
            if (found is not null)
            {
                return found;
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException(
                    $"no {what} within {timeout.TotalSeconds:0} s; the stand-in received {Calls.Count} calls:\n" +
                    string.Join('\n', Calls.Select(c => "  " + Truncate(c.ToString(), 400))));
            }

            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }

    private static string Truncate(string s, int max) => s.Length <= max ? s : s[..max] + "…";

    private async Task<IResult> HandleApiAsync(HttpContext context, string method)
    {
        var (body, json, receivedAt) = await ReadAsync(context);
        var ts = method == "chat.postMessage"
            ? $"1732540000.{Interlocked.Increment(ref _nextTs):D6}"
            : json?["ts"]?.GetValue<string>() ?? $"1732540000.{Interlocked.Increment(ref _nextTs):D6}";
        Record(new SlackCall(context.Request.Path.Value ?? string.Empty, context.Request.Headers.Authorization.ToString(), body, json, receivedAt, ts));
        return Results.Json(new { ok = true, channel = "C0TEST", ts });
    }

    private async Task<IResult> HandleWebhookAsync(HttpContext context)
    {
        var (body, json, receivedAt) = await ReadAsync(context);
        Record(new SlackCall(context.Request.Path.Value ?? string.Empty, context.Request.Headers.Authorization.ToString(), body, json, receivedAt, null));
        return Results.Text("ok");
    }

    private static async Task<(string Body, JsonObject? Json, long ReceivedAt)> ReadAsync(HttpContext context)
    {
        var receivedAt = Stopwatch.GetTimestamp();
        using var reader = new StreamReader(context.Request.Body);
        var body = await reader.ReadToEndAsync();
        try
        {
            return (body, JsonNode.Parse(body) as JsonObject, receivedAt);
        }
        catch (System.Text.Json.JsonException)
        {
            // Slack also accepts form posts; the test only needs the raw body then.
            return (body, null, receivedAt);
        }
    }

    private void Record(SlackCall call)
    {
        lock (_gate)
        {
            _calls.Add(call);
        }
    }
}
