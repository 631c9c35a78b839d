using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace B25.Alerting.Tests.Enrichment;

/// <summary>
/// A server that takes connections and requests and never answers: the slowest Prometheus or Loki there is.
/// Unlike a stand-in with a delay, it holds nothing up when the test ends (its connections are just closed).
/// </summary>
internal sealed class SilentHttpServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly ConcurrentBag<TcpClient> _clients = [];
    private readonly CancellationTokenSource _stop = new();
    private int _requests;

    public SilentHttpServer()
    {
        _listener.Start();
        _ = AcceptAsync();
    }

    public string Url => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    /// <summary>Requests whose first bytes arrived.</summary>
    public int Requests => Volatile.Read(ref _requests);

    private async Task AcceptAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                _clients.Add(client);
                _ = ReadAsync(client);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }

    private async Task ReadAsync(TcpClient client)
    {
        var buffer = new byte[8192];
        try
        {
            var stream = client.GetStream();
            if (await stream.ReadAsync(buffer, _stop.Token) > 0) Interlocked.Increment(ref _requests);
            while (await stream.ReadAsync(buffer, _stop.Token) > 0) { }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or IOException or SocketException)
        {
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        foreach (var client in _clients) client.Dispose();
        _stop.Dispose();
    }
}
