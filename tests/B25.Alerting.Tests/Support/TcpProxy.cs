using System.Net;
using System.Net.Sockets;

namespace B25.Alerting.Tests.Support;

/// <summary>How <see cref="TcpProxy.Cut"/> cuts the way to the target.</summary>
public enum CutMode
{
    /// <summary>Current connections are reset; new ones are accepted and reset at once, as by a server that is down.</summary>
    Refuse,

    /// <summary>Current connections are reset; new ones are accepted and hear nothing back: clients hang until their own timeout.</summary>
    Blackhole,

    /// <summary>
    /// A network partition: current connections stay open but nothing passes either way, and new ones hang as
    /// with <see cref="Blackhole"/>. On <see cref="TcpProxy.Restore"/> the held bytes and connections go through,
    /// as when a partition heals.
    /// </summary>
    Partition,
}

/// <summary>
/// A TCP proxy on 127.0.0.1 and a free port that forwards every connection to one target, and can cut the way
/// (<see cref="Cut"/>) and restore it (<see cref="Restore"/>): a replica cut off from its database.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly string _targetHost;
    private readonly int _targetPort;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _accepting;
    private readonly object _lock = new();
    private readonly HashSet<Link> _links = [];
    private readonly List<Socket> _held = [];
    private readonly List<Task> _forwarding = [];
    private CutMode? _cut;
    private TaskCompletionSource _flowing = Open();
    private int _accepted, _forwarded, _refused, _heldTotal, _dropped, _acceptErrors;
    private long _bytesToTarget, _bytesFromTarget;

    public TcpProxy(string targetHost, int targetPort)
    {
        _targetHost = targetHost;
        _targetPort = targetPort;
        // Port 0: the kernel picks a free port as it binds, with no gap in which another process could take it.
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = new Thread(Accept) { IsBackground = true, Name = "tcp-proxy-accept" };
        _accepting.Start();
    }

    public string Host => "127.0.0.1";
    public int Port { get; }

    /// <summary>The current cut, or null while connections go through.</summary>
    public CutMode? Cutting
    {
        get { lock (_lock) return _cut; }
    }

    /// <summary>Connections accepted from clients, in any state.</summary>
    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>Connections joined to the target.</summary>
    public int Forwarded => Volatile.Read(ref _forwarded);

    /// <summary>Connections reset at once under <see cref="CutMode.Refuse"/>, or because the target refused them.</summary>
    public int Refused => Volatile.Read(ref _refused);

    /// <summary>Connections accepted under <see cref="CutMode.Blackhole"/> or <see cref="CutMode.Partition"/> and held unanswered.</summary>
    public int Held => Volatile.Read(ref _heldTotal);

    /// <summary>Accepts that failed (a client that gave up before it was accepted).</summary>
    public int AcceptErrors => Volatile.Read(ref _acceptErrors);

    /// <summary>Forwarded connections reset by a cut.</summary>
    public int Dropped => Volatile.Read(ref _dropped);

    /// <summary>Forwarded connections open now.</summary>
    public int Active
    {
        get { lock (_lock) return _links.Count; }
    }

    public long BytesToTarget => Interlocked.Read(ref _bytesToTarget);
    public long BytesFromTarget => Interlocked.Read(ref _bytesFromTarget);

    public void Cut(CutMode mode)
    {
        lock (_lock)
        {
            _cut = mode;
            if (_flowing.Task.IsCompleted) _flowing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (mode == CutMode.Partition) return;
            foreach (var link in _links)
            {
                link.Reset();
                Interlocked.Increment(ref _dropped);
            }
            _links.Clear();
        }
    }

    /// <summary>New connections go through again; connections and bytes held by a blackhole or partition go on to the target.</summary>
    public void Restore()
    {
        List<Socket> held;
        lock (_lock)
        {
            _cut = null;
            held = [.. _held];
            _held.Clear();
            _flowing.TrySetResult();
        }
        foreach (var client in held) Track(ForwardAsync(client));
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_lock)
        {
            foreach (var link in _links) link.Reset();
            _links.Clear();
            foreach (var client in _held) ResetSocket(client);
            _held.Clear();
            _flowing.TrySetResult();
        }
        _accepting.Join(TimeSpan.FromSeconds(10));
        Task[] forwarding;
        lock (_lock) forwarding = [.. _forwarding];
        await Task.WhenAll(forwarding);
        _stop.Dispose();
    }

    /// <summary>
    /// Accepts on a thread of its own, not on the thread pool: a busy test run can starve the pool for seconds, and a
    /// client that gave up before its connection was accepted would then never be counted (nor held, nor forwarded).
    /// </summary>
    private void Accept()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = _listener.AcceptSocket();
            }
            catch (Exception e) when (e is ObjectDisposedException or SocketException or InvalidOperationException)
            {
                if (_stop.IsCancellationRequested) return;
                Interlocked.Increment(ref _acceptErrors);
                continue;
            }
            Interlocked.Increment(ref _accepted);
            lock (_lock)
            {
                if (_cut is CutMode.Blackhole or CutMode.Partition)
                {
                    _held.Add(client);
                    Interlocked.Increment(ref _heldTotal);
                    continue;
                }
                if (_cut is CutMode.Refuse)
                {
                    // Counted before the reset: a client that sees the reset finds it counted.
                    Interlocked.Increment(ref _refused);
                    ResetSocket(client);
                    continue;
                }
            }
            Track(ForwardAsync(client));
        }
    }

    private void Track(Task forwarding)
    {
        lock (_lock)
        {
            _forwarding.RemoveAll(t => t.IsCompleted);
            _forwarding.Add(forwarding);
        }
    }

    private async Task ForwardAsync(Socket client)
    {
        var target = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.NoDelay = true;
        try
        {
            await target.ConnectAsync(_targetHost, _targetPort, _stop.Token);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            Interlocked.Increment(ref _refused);
            ResetSocket(client);
            target.Dispose();
            return;
        }
        var link = new Link(client, target);
        lock (_lock)
        {
            // A cut that came while connecting applies to this connection too.
            if (_cut is CutMode.Refuse or CutMode.Blackhole || _stop.IsCancellationRequested)
            {
                Interlocked.Increment(ref _dropped);
                link.Reset();
                return;
            }
            _links.Add(link);
            Interlocked.Increment(ref _forwarded);
        }
        try
        {
            await Task.WhenAll(PumpAsync(link, client, target, toTarget: true), PumpAsync(link, target, client, toTarget: false));
        }
        finally
        {
            lock (_lock) _links.Remove(link);
            link.Dispose();
        }
    }

    private async Task PumpAsync(Link link, Socket from, Socket to, bool toTarget)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                // Bytes (and a close) read while partitioned wait here and go on once restored.
                Task flowing;
                lock (_lock) flowing = _flowing.Task;
                await flowing.WaitAsync(_stop.Token);
                if (read == 0)
                {
                    to.Shutdown(SocketShutdown.Send); // pass the half close on
                    return;
                }
                var sent = 0;
                while (sent < read) sent += await to.SendAsync(buffer.AsMemory(sent, read - sent), SocketFlags.None, _stop.Token);
                if (toTarget) Interlocked.Add(ref _bytesToTarget, read);
                else Interlocked.Add(ref _bytesFromTarget, read);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // One side failed or was reset: reset the other, as a broken path would.
            link.Reset();
        }
    }

    private static TaskCompletionSource Open()
    {
        var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        open.SetResult();
        return open;
    }

    /// <summary>Closes with RST (linger 0) instead of FIN: the peer sees "connection reset", at once.</summary>
    private static void ResetSocket(Socket socket)
    {
        try { socket.LingerState = new LingerOption(true, 0); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        socket.Dispose();
    }

    private sealed class Link(Socket client, Socket target) : IDisposable
    {
        public void Reset()
        {
            ResetSocket(client);
            ResetSocket(target);
        }

        public void Dispose()
        {
            client.Dispose();
            target.Dispose();
        }
    }
}
