using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using B25.Alerting.Contracts;
using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SmtpServer;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace B25.Alerting.Bench;

/// <summary>What every channel stand-in records: the first arrival (Stopwatch timestamp) of each bench notification's token.</summary>
internal interface IArrivals
{
    string Name { get; }
    ConcurrentDictionary<long, long> FirstAt { get; }
}

internal static partial class Tokens
{
    /// <summary>The bench notification id in a text holding the token <c>bx{id}x</c>, or null.</summary>
    public static long? Find(string text)
    {
        var match = Pattern().Match(text);
        return match.Success && long.TryParse(match.Groups[1].ValueSpan, out var id) ? id : null;
    }

    [GeneratedRegex(@"bx(\d+)x")]
    private static partial Regex Pattern();
}

/// <summary>
/// PagerDuty Events API v2 stand-in on Kestrel (127.0.0.1, a free port): POST /v2/enqueue answers 202
/// {"status":"success","message":"Event processed","dedup_key":...} and records the first event of each bench notification.
/// </summary>
internal sealed class PagerDutyStandIn : IArrivals, IAsyncDisposable
{
    private readonly WebApplication _app;
    private long _events;
    private long _triggers;

    public string Name => "pagerduty";
    public ConcurrentDictionary<long, long> FirstAt { get; } = new();
    public string EventsUrl { get; private set; } = "";
    public long Events => Interlocked.Read(ref _events);
    public long Triggers => Interlocked.Read(ref _triggers);

    private PagerDutyStandIn(WebApplication app) => _app = app;

    public static async Task<PagerDutyStandIn> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var standIn = new PagerDutyStandIn(app);
        app.MapPost("/v2/enqueue", (Delegate)standIn.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        standIn.EventsUrl = address.TrimEnd('/') + "/v2/enqueue";
        return standIn;
    }

    private async Task HandleAsync(HttpContext context)
    {
        var arrived = Stopwatch.GetTimestamp();
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var body = await reader.ReadToEndAsync(context.RequestAborted);
        Interlocked.Increment(ref _events);
        var dedupKey = "";
        try
        {
            using var json = JsonDocument.Parse(body);
            if (json.RootElement.TryGetProperty("dedup_key", out var key)) dedupKey = key.GetString() ?? "";
            if (json.RootElement.TryGetProperty("event_action", out var action) && action.GetString() == "trigger")
            {
                Interlocked.Increment(ref _triggers);
                if (Tokens.Find(body) is { } id) FirstAt.TryAdd(id, arrived);
            }
        }
        catch (JsonException)
        {
            context.Response.StatusCode = 400;
            await context.Response.WriteAsync("{\"status\":\"invalid event\",\"message\":\"Event object is invalid\"}", context.RequestAborted);
            return;
        }
        context.Response.StatusCode = 202;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(
            $"{{\"status\":\"success\",\"message\":\"Event processed\",\"dedup_key\":{JsonSerializer.Serialize(dedupKey)}}}", context.RequestAborted);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>
/// A real SMTP server in the bench process (the SmtpServer library) on 127.0.0.1 and a free port. Its message
/// store answers 250 and records when the mail's DATA arrived, by the token in its Subject (the group labels),
/// and the X-B25-Incident header.
/// </summary>
internal sealed class SmtpStandIn : IArrivals, IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _running;
    private long _mails;

    public string Name => "email";
    public ConcurrentDictionary<long, long> FirstAt { get; } = new();
    public ConcurrentDictionary<long, string> IncidentOf { get; } = new();
    public int Port { get; }
    public long Mails => Interlocked.Read(ref _mails);

    public SmtpStandIn()
    {
        Port = Posix.FreePort();
        var options = new SmtpServerOptionsBuilder()
            .ServerName("smtp.bench.test")
            .Endpoint(e => e.Endpoint(new IPEndPoint(IPAddress.Loopback, Port)))
            .Build();
        var services = new global::SmtpServer.ComponentModel.ServiceProvider();
        services.Add(new Store(this));
        services.Add(new NoDelayListenerFactory());
        _running = new global::SmtpServer.SmtpServer(options, services).StartAsync(_stop.Token);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            try
            {
                using var probe = new TcpClient();
                probe.Connect(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(20);
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        try { _running.Wait(TimeSpan.FromSeconds(5)); }
        catch (AggregateException) { }
        _stop.Dispose();
    }

    /// <summary>The unfolded value of a header in the header block of a raw mail, or null.</summary>
    internal static string? Header(string raw, string name)
    {
        var end = raw.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var headers = (end < 0 ? raw : raw[..end]).Replace("\r\n ", " ").Replace("\r\n\t", " ");
        foreach (var line in headers.Split("\r\n"))
            if (line.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase))
                return line[(name.Length + 1)..].Trim();
        return null;
    }

    /// <summary>
    /// The library's listener with TCP_NODELAY on the listening socket (Linux: accepted sockets inherit it). Without it
    /// the reply to a pipelined RCPT TO (MailKit sends MAIL FROM and RCPT TO in one write) waits ~40 ms for the client's
    /// delayed ACK (Nagle), which would be a stand-in artefact: a relay such as Postfix answers pipelined commands at once.
    /// </summary>
    private sealed class NoDelayListenerFactory : global::SmtpServer.Net.IEndpointListenerFactory
    {
        public global::SmtpServer.Net.IEndpointListener CreateListener(global::SmtpServer.IEndpointDefinition endpointDefinition)
        {
            var listener = new TcpListener(endpointDefinition.Endpoint);
            listener.Server.NoDelay = true;
            listener.Start();
            return new NoDelayListener(listener);
        }
    }

    private sealed class NoDelayListener(TcpListener listener) : global::SmtpServer.Net.IEndpointListener
    {
        public async Task<global::SmtpServer.IO.ISecurableDuplexPipe> GetPipeAsync(ISessionContext context, CancellationToken cancellationToken)
        {
            var tcp = await listener.AcceptTcpClientAsync(cancellationToken);
            tcp.NoDelay = true;
            context.Properties[global::SmtpServer.Net.EndpointListener.LocalEndPointKey] = tcp.Client.LocalEndPoint!;
            context.Properties[global::SmtpServer.Net.EndpointListener.RemoteEndPointKey] = tcp.Client.RemoteEndPoint!;
            return new PlainPipe(tcp);
        }

        public void Dispose() => listener.Stop();
    }

    /// <summary>A plain TCP duplex pipe (the bench never uses STARTTLS: Smtp__Security=None).</summary>
    private sealed class PlainPipe(TcpClient tcp) : global::SmtpServer.IO.ISecurableDuplexPipe
    {
        private readonly NetworkStream _stream = tcp.GetStream();
        private System.IO.Pipelines.PipeReader? _input;
        private System.IO.Pipelines.PipeWriter? _output;

        public System.IO.Pipelines.PipeReader Input => _input ??= System.IO.Pipelines.PipeReader.Create(_stream);
        public System.IO.Pipelines.PipeWriter Output => _output ??= System.IO.Pipelines.PipeWriter.Create(_stream);
        public bool IsSecure => false;
        public System.Security.Authentication.SslProtocols SslProtocol => System.Security.Authentication.SslProtocols.None;

        public Task UpgradeAsync(System.Security.Cryptography.X509Certificates.X509Certificate certificate,
            System.Security.Authentication.SslProtocols protocols, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException("the bench's SMTP stand-in offers no TLS");

        public void Dispose()
        {
            _stream.Dispose();
            tcp.Dispose();
        }
    }

    private sealed class Store(SmtpStandIn owner) : MessageStore
    {
        public override Task<SmtpResponse> SaveAsync(ISessionContext context, IMessageTransaction transaction, ReadOnlySequence<byte> buffer,
            CancellationToken cancellationToken)
        {
            var arrived = Stopwatch.GetTimestamp();
            Interlocked.Increment(ref owner._mails);
            var raw = Encoding.UTF8.GetString(buffer);
            // The subject carries the group labels' values, so the token; MimeKit may encode a non-ASCII subject, ours is ASCII.
            if (Tokens.Find(Header(raw, "Subject") ?? "") is { } id)
            {
                owner.FirstAt.TryAdd(id, arrived);
                if (Header(raw, "X-B25-Incident") is { } incident) owner.IncidentOf.TryAdd(id, incident);
            }
            return Task.FromResult(SmtpResponse.Ok);
        }
    }
}

/// <summary>
/// The risk manager's side of the contract: a MassTransit 8 bus on the throwaway RabbitMQ with a consumer of
/// <see cref="EmergencyStopRequested"/> (its own queue, bound to the message type's exchange the way MassTransit
/// binds any consumer). Records the first command of each bench notification (token in the alert's labels).
/// It does not answer (no EmergencyStopAcknowledged), so the service's answer path is not part of the figures.
/// </summary>
internal sealed class RiskManagerConsumer : IArrivals, IAsyncDisposable
{
    private readonly IBusControl _bus;
    private long _commands;

    public string Name => "risk-manager";
    public ConcurrentDictionary<long, long> FirstAt { get; } = new();
    public long Commands => Interlocked.Read(ref _commands);

    private RiskManagerConsumer(Func<RiskManagerConsumer, IBusControl> bus) => _bus = bus(this);

    public static async Task<RiskManagerConsumer> StartAsync(string rabbitUri, string queue)
    {
        var consumer = new RiskManagerConsumer(self => Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host(new Uri(rabbitUri));
            cfg.ReceiveEndpoint(queue, e =>
            {
                e.PrefetchCount = 64;
                e.Handler<EmergencyStopRequested>(context =>
                {
                    var arrived = Stopwatch.GetTimestamp();
                    Interlocked.Increment(ref self._commands);
                    if (context.Message.Labels.TryGetValue("bench_id", out var token) && Tokens.Find(token) is { } id)
                        self.FirstAt.TryAdd(id, arrived);
                    return Task.CompletedTask;
                });
            });
        }));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await consumer._bus.StartAsync(cts.Token);
        return consumer;
    }

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await _bus.StopAsync(cts.Token);
    }
}
