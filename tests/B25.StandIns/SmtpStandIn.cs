using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using MimeKit;
using SmtpServer;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace B25.StandIns;

/// <summary>
/// A real SMTP server in the test process (the SmtpServer library) on 127.0.0.1 and a free port.
/// Every mail the service delivers is kept as raw MIME; how DATA is answered can be switched per test
/// (e.g. 451 then 250, or 550 for good).
/// </summary>
public sealed class SmtpStandIn : IDisposable
{
    private readonly ConcurrentQueue<ReceivedMail> _accepted = new();
    private readonly ConcurrentQueue<int> _refused = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _running;
    private volatile Func<int, int?> _reply = _ => null;
    private int _attempts;

    /// <param name="port">A port to listen on (e.g. one the service already failed to reach); default a free one.</param>
    public SmtpStandIn(int? port = null)
    {
        Port = port ?? FreePort();
        var options = new SmtpServerOptionsBuilder()
            .ServerName("smtp.test")
            .Endpoint(e => e.Endpoint(new IPEndPoint(IPAddress.Loopback, Port)))
            .Build();
        var services = new global::SmtpServer.ComponentModel.ServiceProvider();
        services.Add(new Store(this));
        var server = new global::SmtpServer.SmtpServer(options, services);
        _running = server.StartAsync(_stop.Token);
        WaitUntilListening();
    }

    public int Port { get; }

    /// <summary>Mails the server answered 250 to, in order.</summary>
    public IReadOnlyList<ReceivedMail> Mails => _accepted.ToArray();

    /// <summary>Reply codes of the DATA commands the server refused.</summary>
    public IReadOnlyList<int> Refused => _refused.ToArray();

    /// <summary>Settings that point the service's email channel here.</summary>
    public Dictionary<string, string?> Settings(params string[] to)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Smtp:Host"] = "127.0.0.1",
            ["Smtp:Port"] = Port.ToString(),
            ["Smtp:Security"] = "None",
            ["Smtp:From"] = "B25 Alerting <alerts@b25.test>",
            ["Smtp:Timeout"] = "00:00:05",
            ["Smtp:RetryAfter"] = "00:00:00.300",
        };
        for (var i = 0; i < to.Length; i++) settings[$"Smtp:To:{i}"] = to[i];
        return settings;
    }

    /// <summary>How DATA is answered: given the attempt number (1, 2, ...), null for 250 or a reply code.</summary>
    public void Reply(Func<int, int?> reply) => _reply = reply;

    public void Dispose()
    {
        _stop.Cancel();
        try { _running.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        _stop.Dispose();
    }

    private void WaitUntilListening()
    {
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

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private sealed class Store(SmtpStandIn owner) : MessageStore
    {
        public override Task<SmtpResponse> SaveAsync(ISessionContext context, IMessageTransaction transaction, ReadOnlySequence<byte> buffer,
            CancellationToken cancellationToken)
        {
            var attempt = Interlocked.Increment(ref owner._attempts);
            if (owner._reply(attempt) is { } code)
            {
                owner._refused.Enqueue(code);
                return Task.FromResult(new SmtpResponse((SmtpReplyCode)code, code >= 500 ? "5.1.1 mailbox unavailable" : "4.7.1 try again later"));
            }
            var raw = buffer.ToArray();
            owner._accepted.Enqueue(new ReceivedMail(
                transaction.To.Select(m => $"{m.User}@{m.Host}").ToList(),
                raw,
                MimeMessage.Load(new MemoryStream(raw))));
            return Task.FromResult(SmtpResponse.Ok);
        }
    }
}

/// <summary>One accepted mail: the envelope recipients, the raw MIME and the parsed message.</summary>
public sealed record ReceivedMail(IReadOnlyList<string> EnvelopeTo, byte[] Raw, MimeMessage Message)
{
    public string Subject => Message.Subject ?? "";
    public string Text => Message.TextBody ?? "";
    public string Html => Message.HtmlBody ?? "";
}
