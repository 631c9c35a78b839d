using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace B25.Alerting.Bench;

/// <summary>
/// Slack Web API stand-in on Kestrel (127.0.0.1, a free port): answers every chat.* call ok and records
/// when the first chat.postMessage of each bench notification (token bx{id}x in its body) arrived.
/// </summary>
internal sealed partial class SlackStandIn : IArrivals, IAsyncDisposable
{
    private readonly WebApplication _app;
    private long _ts;
    private long _posts;
    private long _updates;
    private long _replies;

    public ConcurrentDictionary<long, long> FirstPostAt { get; } = new();
    public string Name => "slack";
    ConcurrentDictionary<long, long> IArrivals.FirstAt => FirstPostAt;
    public string BaseUrl { get; private set; } = "";
    public long Posts => Interlocked.Read(ref _posts);
    public long Updates => Interlocked.Read(ref _updates);
    /// <summary>chat.postMessage calls in a thread (replies and notes), included in <see cref="Posts"/>.</summary>
    public long Replies => Interlocked.Read(ref _replies);

    private SlackStandIn(WebApplication app) => _app = app;

    public static async Task<SlackStandIn> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = null);
        var app = builder.Build();
        var standIn = new SlackStandIn(app);
        app.MapPost("/api/{method}", (Delegate)standIn.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        standIn.BaseUrl = address.TrimEnd('/') + "/api/";
        return standIn;
    }

    private async Task HandleAsync(HttpContext context, string method)
    {
        var arrived = Stopwatch.GetTimestamp();
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var body = await reader.ReadToEndAsync(context.RequestAborted);
        if (method == "chat.postMessage")
        {
            Interlocked.Increment(ref _posts);
            if (body.Contains("\"thread_ts\"", StringComparison.Ordinal)) Interlocked.Increment(ref _replies);
            var match = TokenPattern().Match(body);
            if (match.Success && long.TryParse(match.Groups[1].ValueSpan, out var id))
                FirstPostAt.TryAdd(id, arrived);
        }
        else if (method == "chat.update")
        {
            Interlocked.Increment(ref _updates);
        }
        var ts = Interlocked.Increment(ref _ts);
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync($"{{\"ok\":true,\"channel\":\"C1\",\"ts\":\"1764000000.{ts:D6}\"}}", context.RequestAborted);
    }

    [GeneratedRegex(@"bx(\d+)x")]
    private static partial Regex TokenPattern();

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
