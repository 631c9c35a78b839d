using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace B25.FaultSuite;

/// <summary>
/// A throwaway PostgreSQL 15 (Debian's postgresql, /work/shared/environment.md) for the replica scenarios: initdb into the
/// scenario's folder, then <c>postgres</c> itself in the foreground as a child of the suite (as the <c>postgres</c> user
/// when the suite runs as root: initdb and postgres refuse root), on 127.0.0.1 and a free port, its socket in its own
/// folder. The suite holds the postmaster's PID: a fast stop is SIGINT to it (what <c>pg_ctl -m fast</c> sends), and the
/// server starts again on the same data folder.
/// </summary>
internal sealed class PostgresServer : IDisposable
{
    private const string Bin = "/usr/lib/postgresql/15/bin";
    public const string Database = "b25";
    private readonly string _dir;
    private readonly string _data;
    private readonly string _log;
    private Process? _server;
    private bool _disposed;

    public static bool Installed => File.Exists(Path.Combine(Bin, "postgres"));
    public int Port { get; }
    public bool Running => _server is { HasExited: false };
    public string Log => _log;

    public PostgresServer(string workDir)
    {
        _dir = Path.Combine(workDir, "postgres");
        _data = Path.Combine(_dir, "data");
        _log = Path.Combine(_dir, "postgres.log");
        Port = Posix.FreePort();
    }

    /// <summary>The service's connection string, to this server or to a proxy in front of it.</summary>
    public static string ConnectionString(int port) =>
        $"Host=127.0.0.1;Port={port.ToString(CultureInfo.InvariantCulture)};Username=postgres;Database={Database}";

    /// <summary>The suite's own connections: no pooling, so a restart or a terminated session never leaves a dead one behind.</summary>
    public string AdminConnectionString(string database = Database) =>
        $"Host=127.0.0.1;Port={Port.ToString(CultureInfo.InvariantCulture)};Username=postgres;Database={database};Pooling=false;Timeout=5;Command Timeout=30;Application Name=b25-fault-suite";

    /// <summary>initdb, start, and create the service's database.</summary>
    public async Task InitAsync()
    {
        Directory.CreateDirectory(_dir);
        if (Posix.IsRoot && !OperatingSystem.IsWindows())
        {
            // The postgres user must reach its folder through the suite's (whatever the umask made them).
            var tmp = Path.GetFullPath(Path.GetTempPath()).TrimEnd('/');
            for (var up = Path.GetDirectoryName(_dir); up is not null && up.StartsWith(tmp + "/", StringComparison.Ordinal); up = Path.GetDirectoryName(up))
                File.SetUnixFileMode(up, File.GetUnixFileMode(up) | UnixFileMode.OtherExecute);
            var (chown, output) = await Posix.RunAsync("chown", ["postgres:postgres", _dir], TimeSpan.FromSeconds(10));
            if (chown != 0) throw new InvalidOperationException($"chown postgres {_dir} failed: {output}");
        }
        var (code, init) = await Posix.RunAsync(AsPostgres(Path.Combine(Bin, "initdb")).File,
            [.. AsPostgres(Path.Combine(Bin, "initdb")).Args, "-D", _data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"], TimeSpan.FromSeconds(120));
        if (code != 0) throw new InvalidOperationException($"initdb failed ({code}): {init}");
        await StartAsync();
        await using var connection = new NpgsqlConnection(AdminConnectionString("postgres"));
        await connection.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE {Database}", connection);
        await create.ExecuteNonQueryAsync();
    }

    /// <summary>setpriv switches to the postgres user and execs the command: the child's PID is the command's.</summary>
    private static (string File, string[] Args) AsPostgres(string file) =>
        Posix.IsRoot ? ("/usr/bin/setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", file]) : (file, []);

    public async Task StartAsync()
    {
        var (file, prefix) = AsPostgres(Path.Combine(Bin, "postgres"));
        _server = Posix.StartLogged(file,
            [.. prefix, "-D", _data, "-c", "listen_addresses=127.0.0.1", "-p", Port.ToString(CultureInfo.InvariantCulture), "-k", _dir,
             "-c", "max_connections=300", "-c", "log_min_messages=warning"],
            _log, new Dictionary<string, string>());
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && !_server.HasExited)
        {
            try
            {
                await using var connection = new NpgsqlConnection(AdminConnectionString("postgres"));
                await connection.OpenAsync();
                return;
            }
            catch (NpgsqlException) { }
            catch (IOException) { }
            await Task.Delay(100);
        }
        throw new InvalidOperationException($"PostgreSQL did not start; see {_log}");
    }

    /// <summary>Fast shutdown (SIGINT to the postmaster: sessions are ended, open transactions rolled back) and waits for it to exit.</summary>
    public async Task StopFastAsync()
    {
        if (_server is not { HasExited: false } server) return;
        _ = Posix.Kill(server.Id, Posix.SigInt);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try { await server.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            _ = Posix.Kill(server.Id, Posix.SigQuit); // immediate shutdown
            await server.WaitForExitAsync();
        }
    }

    /// <summary>pg_terminate_backend of the service's sessions (its application name); <paramref name="share"/> of them at random. Returns how many.</summary>
    public async Task<int> TerminateServiceSessionsAsync(double share)
    {
        await using var connection = new NpgsqlConnection(AdminConnectionString());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            """
            SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE application_name LIKE 'b25-alerting%' AND pid <> pg_backend_pid() AND random() < @share
            """, connection);
        command.Parameters.AddWithValue("share", share);
        return Convert.ToInt32(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    /// <summary>Runs a query and reads every row with <paramref name="read"/>.</summary>
    public async Task<List<T>> QueryAsync<T>(string sql, Func<NpgsqlDataReader, T> read)
    {
        await using var connection = new NpgsqlConnection(AdminConnectionString());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<T>();
        while (await reader.ReadAsync()) rows.Add(read(reader));
        return rows;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        StopFastAsync().GetAwaiter().GetResult();
        _server?.Dispose();
    }
}

/// <summary>
/// A TCP proxy between one replica and PostgreSQL (127.0.0.1, a free port), to cut that replica off and restore it.
/// Two kinds of cut: <see cref="CutKind.Reset"/> closes every connection at once (RST) and refuses new ones until
/// restored, as a firewall rejecting or a proxy restarting; <see cref="CutKind.Blackhole"/> stops moving bytes both
/// ways and holds new connections unanswered, as a network partition: nothing is closed, and when it heals what was
/// held flows again (queries sent during the cut arrive late, and so do their answers, if the two ends still wait).
/// </summary>
internal sealed class TcpProxy : IAsyncDisposable
{
    public enum CutKind { Reset, Blackhole }

    private readonly TcpListener _listener;
    private readonly int _upstreamPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<(Socket Client, Socket? Upstream)> _connections = [];
    private readonly Lock _lock = new();
    private TaskCompletionSource _open = NewOpen(completed: true);
    private CutKind? _cut;
    private readonly Task _accepting;

    public int Port { get; }
    public bool IsCut { get { lock (_lock) return _cut is not null; } }

    public TcpProxy(int upstreamPort)
    {
        _upstreamPort = upstreamPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start(512);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = Task.Run(AcceptLoopAsync);
    }

    private static TaskCompletionSource NewOpen(bool completed)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (completed) tcs.SetResult();
        return tcs;
    }

    /// <summary>Cuts the replica off; returns the connections it had.</summary>
    public int Cut(CutKind kind)
    {
        List<(Socket Client, Socket? Upstream)> toReset;
        lock (_lock)
        {
            if (_cut is not null) return 0;
            _cut = kind;
            _open = NewOpen(completed: false);
            toReset = kind == CutKind.Reset ? [.. _connections] : [];
            if (kind == CutKind.Reset) _connections.Clear();
            var count = _connections.Count + toReset.Count;
            foreach (var (client, upstream) in toReset)
            {
                Reset(client);
                if (upstream is not null) Reset(upstream);
            }
            return count;
        }
    }

    public void Restore()
    {
        lock (_lock)
        {
            _cut = null;
            _open.TrySetResult();
        }
    }

    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0); // close with RST
            socket.Close();
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await _listener.AcceptSocketAsync(_stop.Token); }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            client.NoDelay = true;
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(Socket client)
    {
        Task open;
        lock (_lock)
        {
            if (_cut == CutKind.Reset)
            {
                Reset(client);
                return;
            }
            open = _open.Task;
        }
        // Blackhole: a new connection is accepted and then nothing happens until the cut heals.
        await open;
        var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try { await upstream.ConnectAsync(IPAddress.Loopback, _upstreamPort, _stop.Token); }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            Reset(client);
            upstream.Dispose();
            return;
        }
        lock (_lock)
        {
            if (_cut == CutKind.Reset)
            {
                Reset(client);
                Reset(upstream);
                return;
            }
            _connections.Add((client, upstream));
        }
        var a = PumpAsync(client, upstream);
        var b = PumpAsync(upstream, client);
        await Task.WhenAny(a, b);
        lock (_lock) _connections.Remove((client, upstream));
        // One side ended: end the other too (a plain close, as a proxy passes a FIN on).
        try { client.Shutdown(SocketShutdown.Both); } catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { }
        try { upstream.Shutdown(SocketShutdown.Both); } catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { }
        await Task.WhenAll(a, b);
        client.Dispose();
        upstream.Dispose();
    }

    private async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (n == 0) return;
                // During a blackhole what was read is held here, and sent when the cut heals.
                Task open;
                lock (_lock) open = _open.Task;
                await open.WaitAsync(_stop.Token);
                var sent = 0;
                while (sent < n) sent += await to.SendAsync(buffer.AsMemory(sent, n - sent), SocketFlags.None, _stop.Token);
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException) { }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        Restore();
        List<(Socket Client, Socket? Upstream)> all;
        lock (_lock) all = [.. _connections];
        foreach (var (client, upstream) in all)
        {
            Reset(client);
            if (upstream is not null) Reset(upstream);
        }
        try { await _accepting; } catch (Exception) { }
        _stop.Dispose();
    }
}
