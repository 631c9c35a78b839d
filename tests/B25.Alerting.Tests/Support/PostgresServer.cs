using System.Diagnostics;
using System.Runtime.InteropServices;
using Npgsql;

namespace B25.Alerting.Tests.Support;

/// <summary>
/// A throwaway PostgreSQL 15 server from Debian's postgresql package, on 127.0.0.1 and a free port, with its
/// data in a temp folder, started for the test collection and removed after it. The postmaster runs in the
/// foreground as a child of the tests (as the postgres OS user when the tests run as root: initdb and postgres
/// refuse root), so a test can stop it (fast shutdown), kill it (SIGKILL, as in a crash) and start it again on
/// the same data and port. Fails loudly when the package is missing.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    public const string BinDirectory = "/usr/lib/postgresql/15/bin";
    private const string OsUser = "postgres";
    private const string Superuser = "postgres";
    private const int MaxLogLines = 400;

    // The child subreaper flag (see KillAsync) belongs to the whole test process: one kill at a time.
    private static readonly SemaphoreSlim Reaping = new(1, 1);

    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"b25-pg-{Guid.NewGuid():N}");
    private readonly Queue<string> _log = new();
    private Process? _postmaster;
    private bool _killed;

    public string Host => "127.0.0.1";
    public int Port { get; private set; }
    public string DataDirectory => Path.Combine(_dir, "data");
    public bool IsRunning => _postmaster is { HasExited: false };

    /// <summary>The postmaster's PID while it runs.</summary>
    public int? ProcessId => _postmaster is { HasExited: false } postmaster ? postmaster.Id : null;

    /// <summary>The last lines the server wrote to stderr (its log), for failure messages.</summary>
    public string Log
    {
        get { lock (_log) return string.Join('\n', _log); }
    }

    public string ConnectionString(string database) =>
        new NpgsqlConnectionStringBuilder { Host = Host, Port = Port, Username = Superuser, Database = database }.ConnectionString;

    public async Task InitializeAsync()
    {
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("the PostgreSQL tests run on Linux");
        if (!File.Exists(Path.Combine(BinDirectory, "postgres")))
            throw new InvalidOperationException(
                $"{BinDirectory}/postgres is missing: install Debian's postgresql (apt-get install -y --no-install-recommends postgresql; tests/run-all.sh does it) to run the PostgreSQL tests.");
        if (AsOsUser && !File.ReadLines("/etc/passwd").Any(l => l.StartsWith(OsUser + ":", StringComparison.Ordinal)))
            throw new InvalidOperationException(
                $"the tests run as root and there is no '{OsUser}' OS user to run PostgreSQL as: Debian's postgresql package creates it; reinstall it.");
        try
        {
            if (AsOsUser)
                await RunAsync("/bin/mkdir", ["-m", "700", _dir], workingDirectory: "/");
            else
                Directory.CreateDirectory(_dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            await RunAsync(Path.Combine(BinDirectory, "initdb"),
                ["-D", DataDirectory, "-U", Superuser, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"]);
            Port = ServiceProcess.FreePort();
            await StartAsync();
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the server again on the same data folder and port; returns once it takes connections.</summary>
    public async Task StartAsync()
    {
        if (IsRunning) return;
        _postmaster?.Dispose();
        var postmaster = Start(Path.Combine(BinDirectory, "postgres"),
            ["-D", DataDirectory, "-p", Port.ToString(), "-k", _dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on"]);
        _postmaster = postmaster;
        await WaitUntilReadyAsync(postmaster);
        _killed = false;
    }

    /// <summary>Fast shutdown (SIGINT): open transactions roll back, clients are disconnected, a checkpoint is written.</summary>
    public async Task StopAsync()
    {
        if (_postmaster is not { HasExited: false } postmaster) return;
        Signal(postmaster.Id, Sigint);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await postmaster.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            await KillAsync();
            throw new TimeoutException($"PostgreSQL did not stop within 60 s of SIGINT and was killed:\n{Log}");
        }
    }

    /// <summary>
    /// SIGKILL, as in a crash: no shutdown checkpoint, clients see their connections drop. The postmaster's children
    /// go too: each leads its own session (PostgreSQL calls setsid in every child), so no process group holds them,
    /// and a backend busy in a query outlives a killed postmaster with the shared memory still attached; the next
    /// postmaster would then refuse to start ("pre-existing shared memory block is still in use").
    /// </summary>
    public async Task KillAsync()
    {
        if (_postmaster is not { HasExited: false } postmaster) return;
        await Reaping.WaitAsync();
        // While the test process is a child subreaper, the postmaster's orphaned children become its own: waitpid then
        // tells when each is gone, and reaps it (PID 1 on these machines reaps orphans late, if ever).
        var wasSubreaper = GetSubreaper();
        SetSubreaper(true);
        try
        {
            // Stopped, the postmaster forks no new child between the listing and the kill.
            Signal(postmaster.Id, Sigstop);
            await WaitUntilStoppedAsync(postmaster.Id);
            var children = ChildrenOf(postmaster.Id);
            Signal(postmaster.Id, Sigkill);
            foreach (var child in children) Signal(child, Sigkill);
            // Not WaitForExitAsync: it also waits for the end of the postmaster's stderr, which any child left alive
            // would hold open. Once the postmaster is gone, all its children, live or zombie, are ours to reap.
            while (!postmaster.HasExited) await Task.Delay(5);
            await ReapAsync(children);
        }
        finally
        {
            if (!wasSubreaper) SetSubreaper(false);
            Reaping.Release();
        }
        _killed = true;
    }

    /// <summary>Creates a database with a new unique name; returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = $"b25_{Guid.NewGuid():N}";
        await using var connection = await OpenMaintenanceAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await command.ExecuteNonQueryAsync();
        return ConnectionString(name);
    }

    /// <summary>
    /// The "dropped connections" fault: ends every client session connected to the database (pg_terminate_backend)
    /// and waits until they are gone. Their clients fail on their next command. Returns how many were ended.
    /// </summary>
    public async Task<int> TerminateConnectionsAsync(string database)
    {
        await using var connection = await OpenMaintenanceAsync();
        await using var command = new NpgsqlCommand(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            connection);
        command.Parameters.Add(new NpgsqlParameter { Value = database });
        return Convert.ToInt32(await command.ExecuteScalarAsync());
    }

    /// <summary>
    /// For the end of the test process: asks the server to stop (SIGINT, fast shutdown) and does not wait; a detached
    /// shell removes its folder once it is gone. Waiting here (a fast shutdown writes a checkpoint) outlasted the time the
    /// test runner gives its process to exit on a loaded machine, and left the run's server running after the run.
    /// </summary>
    public void StopWithoutWaiting()
    {
        if (_postmaster is not { HasExited: false } postmaster) return;
        var pid = postmaster.Id;
        Signal(pid, Sigint);
        try
        {
            using var cleanup = Process.Start(new ProcessStartInfo("/bin/sh",
                ["-c", $"while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; rm -rf '{_dir}'"]) { UseShellExecute = false });
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            // The server stops anyway; only its folder in the temp directory stays.
        }
    }

    public async Task DisposeAsync()
    {
        try
        {
            // A killed server leaves its shared memory behind (a SysV segment and files in /dev/shm); the next
            // postmaster on the same data folder removes them, so start one before stopping for good.
            if (_killed && Directory.Exists(DataDirectory))
            {
                try { await StartAsync(); }
                catch (Exception e) when (e is InvalidOperationException or TimeoutException) { }
            }
            await StopAsync();
        }
        finally
        {
            _postmaster?.Dispose();
            _postmaster = null;
            try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static bool AsOsUser => Environment.IsPrivilegedProcess;

    private string MaintenanceConnectionString(int timeoutSeconds) =>
        new NpgsqlConnectionStringBuilder(ConnectionString("postgres")) { Pooling = false, Timeout = timeoutSeconds }.ConnectionString;

    private async Task<NpgsqlConnection> OpenMaintenanceAsync()
    {
        var connection = new NpgsqlConnection(MaintenanceConnectionString(15));
        await connection.OpenAsync();
        return connection;
    }

    private async Task WaitUntilReadyAsync(Process postmaster)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            if (postmaster.HasExited)
            {
                postmaster.WaitForExit(); // the rest of its output
                throw new InvalidOperationException($"PostgreSQL exited with {postmaster.ExitCode} while starting:\n{Log}");
            }
            try
            {
                await using var connection = new NpgsqlConnection(MaintenanceConnectionString(5));
                await connection.OpenAsync();
                return;
            }
            catch (NpgsqlException e)
            {
                // Refused before the socket is up; 57P03 "the database system is starting up" during crash recovery.
                last = e;
            }
            await Task.Delay(25);
        }
        throw new TimeoutException($"PostgreSQL took no connections within 60 s ({last?.Message}):\n{Log}");
    }

    private ProcessStartInfo Info(string file, IEnumerable<string> args, string? workingDirectory)
    {
        var info = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? _dir,
        };
        // .NET switches user in the forked child before exec: the PID we hold is the program's own, with no su
        // or runuser in between (runuser forks, and forwards SIGINT as SIGTERM, a smart shutdown).
        if (AsOsUser) info.UserName = OsUser;
        foreach (var arg in args) info.ArgumentList.Add(arg);
        return info;
    }

    private Process Start(string file, IEnumerable<string> args)
    {
        var process = Process.Start(Info(file, args, null)) ?? throw new InvalidOperationException($"could not start {file}");
        process.OutputDataReceived += (_, e) => AppendLog(e.Data);
        process.ErrorDataReceived += (_, e) => AppendLog(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private void AppendLog(string? line)
    {
        if (line is null) return;
        lock (_log)
        {
            _log.Enqueue(line);
            while (_log.Count > MaxLogLines) _log.Dequeue();
        }
    }

    private async Task RunAsync(string file, IEnumerable<string> args, string? workingDirectory = null)
    {
        using var process = Process.Start(Info(file, args, workingDirectory)) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"{file} did not finish within 120 s");
        }
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', process.StartInfo.ArgumentList)} exited with {process.ExitCode}:\n{await stdout}{await stderr}");
    }

    private static async Task WaitUntilStoppedAsync(int pid)
    {
        for (var i = 0; i < 200; i++)
        {
            var state = StateOf(pid);
            if (state is null or 'T' or 'Z') return;
            await Task.Delay(5);
        }
        throw new TimeoutException($"the postmaster (PID {pid}) did not stop on SIGSTOP");
    }

    /// <summary>Waits until each process is gone: reaped here when it became our child, else exited (gone or a zombie).</summary>
    private static async Task ReapAsync(IReadOnlyCollection<int> pids)
    {
        var pending = new HashSet<int>(pids);
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (pending.Count > 0)
        {
            foreach (var pid in pending.ToList())
            {
                var reaped = waitpid(pid, out _, Wnohang);
                if (reaped == pid || (reaped == -1 && StateOf(pid) is null or 'Z')) pending.Remove(pid);
            }
            if (pending.Count == 0) return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"PostgreSQL processes {string.Join(", ", pending)} did not exit after SIGKILL");
            await Task.Delay(10);
        }
    }

    private static List<int> ChildrenOf(int parent)
    {
        var children = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            if (Stat(pid) is { } stat && stat.Parent == parent) children.Add(pid);
        }
        return children;
    }

    private static char? StateOf(int pid) => Stat(pid)?.State;

    /// <summary>State and parent PID from /proc/PID/stat ("pid (comm) state ppid ...", comm may hold spaces and parentheses).</summary>
    private static (char State, int Parent)? Stat(int pid)
    {
        string text;
        try { text = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        return (fields[0][0], int.Parse(fields[1]));
    }

    private const int Sigint = 2;
    private const int Sigkill = 9;
    private const int Sigstop = 19;
    private const int Wnohang = 1;
    private const int PrSetChildSubreaper = 36;
    private const int PrGetChildSubreaper = 37;

    private static void Signal(int pid, int signal)
    {
        if (kill(pid, signal) != 0 && Marshal.GetLastPInvokeError() != 3 /* ESRCH: already gone */)
            throw new InvalidOperationException($"kill({pid}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    private static bool GetSubreaper() => prctl(PrGetChildSubreaper, out var value, 0, 0, 0) == 0 && value != 0;

    private static void SetSubreaper(bool on) => prctl(PrSetChildSubreaper, on ? 1u : 0u, 0, 0, 0);

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    [DllImport("libc", SetLastError = true)]
    private static extern int waitpid(int pid, out int status, int options);

    [DllImport("libc", SetLastError = true)]
    private static extern int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [DllImport("libc", SetLastError = true)]
    private static extern int prctl(int option, out int arg2, nuint arg3, nuint arg4, nuint arg5);
}

/// <summary>One PostgreSQL server shared by the test classes of the collection.</summary>
[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "postgres";
}
