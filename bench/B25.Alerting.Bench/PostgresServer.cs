using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace B25.Alerting.Bench;

/// <summary>
/// A throwaway PostgreSQL 15 from Debian's package, per /work/shared/environment.md: initdb and postgres run as
/// the <c>postgres</c> OS user (they refuse root) on a folder of the bench's work dir that this user owns;
/// <c>postgres</c> runs in the foreground as the bench's own child (no pg_ctl daemon), so it is stopped by its
/// PID (SIGINT: fast shutdown) and reaped. Listens on 127.0.0.1 and a Unix socket in that folder only.
/// Server settings are PostgreSQL's defaults (fsync and synchronous_commit on, max_connections 100) unless
/// the bench is given <c>--pg-setting</c>.
/// </summary>
internal sealed class PostgresServer : IDisposable
{
    public const string DefaultBin = "/usr/lib/postgresql/15/bin";
    private const string OsUser = "postgres";
    private readonly Process _postmaster;
    private readonly string _dir;

    public int Port { get; }
    public int Pid => _postmaster.Id;
    public string Version { get; }
    public string DataDirectory => Path.Combine(_dir, "data");
    public string Log => Path.Combine(_dir, "postgres.log");
    public IReadOnlyDictionary<string, string> Settings { get; }

    /// <summary>pg_stat_statements is loaded (<c>--pg-statements</c>): each phase reports its most frequent statements.</summary>
    public bool Statements => Settings.TryGetValue("shared_preload_libraries", out var libraries) && libraries.Contains("pg_stat_statements", StringComparison.Ordinal);

    private PostgresServer(Process postmaster, string dir, int port, string version, IReadOnlyDictionary<string, string> settings)
    {
        _postmaster = postmaster;
        _dir = dir;
        Port = port;
        Version = version;
        Settings = settings;
    }

    public string ConnectionString(string database, bool pooling = true) =>
        new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = Port, Username = "postgres", Database = database, Pooling = pooling }.ConnectionString;

    public static async Task<PostgresServer> StartAsync(string workDir, string bin, int port, IReadOnlyDictionary<string, string> settings)
    {
        if (!File.Exists(Path.Combine(bin, "postgres")))
            throw new InvalidOperationException($"{bin}/postgres is missing: apt-get install -y --no-install-recommends postgresql");
        var asOsUser = Environment.IsPrivilegedProcess;
        if (port == 0) port = Posix.FreePort();
        else if (!Posix.PortFree(port)) throw new InvalidOperationException($"port {port} is taken; pass another --pg-port");
        var dir = Path.Combine(workDir, "postgres");
        Directory.CreateDirectory(dir);
        // The bench's work dir is root's (0755): the postgres user may enter it, and owns this folder.
        if (asOsUser) Run("/bin/chown", [OsUser + ":", dir]);
        var version = Run(Path.Combine(bin, "postgres"), ["--version"]).Trim();
        var user = asOsUser ? OsUser : null;
        Run(Path.Combine(bin, "initdb"), ["-D", Path.Combine(dir, "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"],
            user, Path.Combine(dir, "initdb.log"));
        string[] args =
        [
            "-D", Path.Combine(dir, "data"), "-p", port.ToString(CultureInfo.InvariantCulture), "-k", dir, "-c", "listen_addresses=127.0.0.1",
            .. settings.SelectMany(s => new[] { "-c", $"{s.Key}={s.Value}" }),
        ];
        var postmaster = Posix.StartLogged(Path.Combine(bin, "postgres"), args, Path.Combine(dir, "postgres.log"), new Dictionary<string, string>(), user, dir);
        var server = new PostgresServer(postmaster, dir, port, version, settings);
        Cleanup.Add(server);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (postmaster.HasExited)
            {
                server.Dispose();
                throw new InvalidOperationException($"PostgreSQL exited with {postmaster.ExitCode} while starting; see {server.Log}");
            }
            try
            {
                await using var connection = new NpgsqlConnection(server.ConnectionString("postgres", pooling: false));
                await connection.OpenAsync();
                if (server.Statements)
                {
                    await using var create = new NpgsqlCommand("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", connection);
                    await create.ExecuteNonQueryAsync();
                }
                return server;
            }
            catch (NpgsqlException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
            catch (NpgsqlException ex)
            {
                server.Dispose();
                throw new TimeoutException($"PostgreSQL took no connections in 60 s ({ex.Message}); see {server.Log}");
            }
        }
    }

    /// <summary>Creates an empty database (dropping one of the same name first); returns its connection string for the service.</summary>
    public async Task<string> CreateDatabaseAsync(string name)
    {
        await using (var connection = new NpgsqlConnection(ConnectionString("postgres", pooling: false)))
        {
            await connection.OpenAsync();
            await using (var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection))
                await drop.ExecuteNonQueryAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await create.ExecuteNonQueryAsync();
        }
        return ConnectionString(name);
    }

    /// <summary>pg_stat_database of one database plus its client sessions now (numbers only, for before/after deltas).</summary>
    public async Task<DatabaseStats> StatsAsync(string database)
    {
        await using var connection = new NpgsqlConnection(ConnectionString("postgres", pooling: false));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            """
            SELECT d.xact_commit, d.xact_rollback, d.deadlocks, d.blks_read, d.blks_hit,
                   (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname AND a.backend_type = 'client backend'),
                   (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname AND a.wait_event_type = 'Lock')
            FROM pg_stat_database d WHERE d.datname = $1
            """, connection);
        command.Parameters.Add(new NpgsqlParameter { Value = database });
        await using var reader = await command.ExecuteReaderAsync();
        if (!await reader.ReadAsync()) return new DatabaseStats(0, 0, 0, 0, 0, 0, 0);
        return new DatabaseStats(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4),
            reader.GetInt64(5), reader.GetInt64(6));
    }

    /// <summary>
    /// Times a <c>SELECT 1</c> round trip on one connection of its own every 100 ms until cancelled: what one
    /// round trip to the server costs a client on this machine at the moment (the service makes many per notification).
    /// </summary>
    public async Task<List<double>> ProbeRoundTripsAsync(string database, CancellationToken stop)
    {
        var samples = new List<double>();
        await using var connection = new NpgsqlConnection(ConnectionString(database, pooling: false));
        await connection.OpenAsync(CancellationToken.None);
        await using var command = new NpgsqlCommand("SELECT 1", connection);
        while (!stop.IsCancellationRequested)
        {
            var t0 = Stopwatch.GetTimestamp();
            await command.ExecuteScalarAsync(CancellationToken.None);
            samples.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            try { await Task.Delay(100, stop); }
            catch (OperationCanceledException) { }
        }
        return samples;
    }

    /// <summary>Forgets the statement counts so far (with <see cref="Statements"/>).</summary>
    public async Task ResetStatementsAsync()
    {
        if (!Statements) return;
        await using var connection = new NpgsqlConnection(ConnectionString("postgres", pooling: false));
        await connection.OpenAsync();
        await using var reset = new NpgsqlCommand("SELECT pg_stat_statements_reset()", connection);
        await reset.ExecuteNonQueryAsync();
    }

    /// <summary>All statement calls of the database since the last reset but Npgsql's pool reset (DISCARD ALL, sent along with the next statement).</summary>
    public async Task<long> StatementCallsAsync(string database)
    {
        if (!Statements) return 0;
        await using var connection = new NpgsqlConnection(ConnectionString("postgres", pooling: false));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT COALESCE(SUM(s.calls), 0)::bigint FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1 AND s.query <> 'DISCARD ALL'",
            connection);
        command.Parameters.Add(new NpgsqlParameter { Value = database });
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>The database's statements since the last reset, most called first (with <see cref="Statements"/>).</summary>
    public async Task<IReadOnlyList<(long Calls, double TotalMs, double MeanMs, string Query)>> TopStatementsAsync(string database, int count, bool byTime = false)
    {
        if (!Statements) return [];
        await using var connection = new NpgsqlConnection(ConnectionString("postgres", pooling: false));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            """
            SELECT s.calls, s.total_exec_time, s.mean_exec_time, left(regexp_replace(s.query, '\s+', ' ', 'g'), 110)
            FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
            WHERE d.datname = $1 ORDER BY (CASE WHEN $3 THEN s.total_exec_time ELSE s.calls END) DESC LIMIT $2
            """, connection);
        command.Parameters.Add(new NpgsqlParameter { Value = database });
        command.Parameters.Add(new NpgsqlParameter { Value = (long)count });
        command.Parameters.Add(new NpgsqlParameter { Value = byTime });
        var rows = new List<(long, double, double, string)>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) rows.Add((reader.GetInt64(0), reader.GetDouble(1), reader.GetDouble(2), reader.GetString(3)));
        return rows;
    }

    /// <summary>
    /// CPU seconds of the whole server: the postmaster, its live children (backends, WAL writer, checkpointer...)
    /// and the children it has reaped (cutime + cstime). Backends are the postmaster's direct children.
    /// </summary>
    public double CpuSeconds()
    {
        var total = Posix.CpuSeconds(Pid, includeReapedChildren: true);
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Pid) continue;
            if (Posix.ParentPid(pid) == Pid) total += Posix.CpuSeconds(pid);
        }
        return total;
    }

    public void Dispose()
    {
        Cleanup.Remove(this);
        if (_postmaster.HasExited) return;
        // SIGINT is PostgreSQL's fast shutdown: sessions are ended, a checkpoint written, every child exits first.
        _ = Posix.Kill(_postmaster.Id, Posix.SigInt);
        if (!_postmaster.WaitForExit(TimeSpan.FromSeconds(60))) _postmaster.Kill();
        _postmaster.WaitForExit();
        _postmaster.Dispose();
    }

    private static string Run(string file, string[] args, string? user = null, string? log = null)
    {
        var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/" };
        // .NET switches user in the forked child before exec: the PID is the program's own (no su in between).
        if (user is not null) info.UserName = user;
        foreach (var a in args) info.ArgumentList.Add(a);
        using var p = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (log is not null) File.WriteAllText(log, stdout + stderr.Result);
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}):\n{stdout}{stderr.Result}");
        return stdout;
    }
}

internal sealed record DatabaseStats(long Commits, long Rollbacks, long Deadlocks, long BlocksRead, long BlocksHit, long Sessions, long WaitingOnLocks)
{
    public string Delta(DatabaseStats before, double seconds) =>
        string.Create(CultureInfo.InvariantCulture,
            $"{Commits - before.Commits} commits ({(Commits - before.Commits) / seconds:F0}/s), {Rollbacks - before.Rollbacks} rollbacks, {Deadlocks - before.Deadlocks} deadlocks, " +
            $"{BlocksRead - before.BlocksRead} blocks read / {BlocksHit - before.BlocksHit} hit, {Sessions} client sessions at the end");
}
