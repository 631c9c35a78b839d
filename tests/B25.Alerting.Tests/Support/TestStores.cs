using System.Data.Common;
using B25.Alerting.Storage;
using B25.Alerting.Storage.Postgres;
using B25.Alerting.Storage.Sqlite;
using Microsoft.Extensions.Options;
using Npgsql;

namespace B25.Alerting.Tests.Support;

/// <summary>
/// The service's stores on a fresh database of the provider the test run is for: SQLite (a temp file)
/// by default, PostgreSQL when B25_TEST_STORAGE=postgres (a fresh database on the run's shared server).
/// </summary>
public sealed class TestStores : IAsyncDisposable
{
    private readonly string? _sqlitePath;
    private readonly string? _postgresDatabase;

    private TestStores(StorageOptions options, string? sqlitePath, string? postgresDatabase, TimeProvider time)
    {
        Options = options;
        _sqlitePath = sqlitePath;
        _postgresDatabase = postgresDatabase;
        var wrapped = Microsoft.Extensions.Options.Options.Create(options);
        Provider = options.Provider == StorageProviderKind.Postgres ? new PostgresStorage(wrapped) : new SqliteStorage(wrapped);
        Journal = new JournalStore(Provider);
        Incidents = new IncidentStore(Provider);
        Outbox = new DeliveryOutbox(Provider, wrapped, time);
        Stops = new EmergencyStopStore(Provider);
        ReadModel = new IncidentReadModel(Provider);
        Status = new StorageStatus(Provider, time);
    }

    /// <summary>True when this test run is for PostgreSQL.</summary>
    public static bool Postgres => Environment.GetEnvironmentVariable("B25_TEST_STORAGE") is { } v && v.Equals("postgres", StringComparison.OrdinalIgnoreCase);

    internal StorageOptions Options { get; }
    internal IStorageProvider Provider { get; }
    internal IJournalStore Journal { get; }
    internal IIncidentStore Incidents { get; }
    internal IDeliveryOutbox Outbox { get; }
    internal IEmergencyStopStore Stops { get; }
    internal IIncidentReadModel ReadModel { get; }
    internal StorageStatus Status { get; }

    /// <summary>The settings that point the service at the same database.</summary>
    public Dictionary<string, string?> Settings => new()
    {
        ["Storage:Provider"] = Options.Provider.ToString(),
        ["Storage:ConnectionString"] = Options.ConnectionString,
    };

    public static Task<TestStores> CreateAsync(TimeProvider? time = null, bool migrate = true, string? replica = null) =>
        CreateAsync(Postgres, time, migrate, replica);

    /// <summary>On PostgreSQL whatever the run is for (replica behaviour exists only there).</summary>
    public static Task<TestStores> CreatePostgresAsync(TimeProvider? time = null, bool migrate = true, string? replica = null) =>
        CreateAsync(true, time, migrate, replica);

    private static async Task<TestStores> CreateAsync(bool postgres, TimeProvider? time, bool migrate, string? replica)
    {
        time ??= TimeProvider.System;
        TestStores stores;
        if (postgres)
        {
            var (connectionString, database) = await SharedPostgres.CreateDatabaseAsync();
            stores = new TestStores(new StorageOptions { Provider = StorageProviderKind.Postgres, ConnectionString = connectionString, ReplicaName = replica ?? "" },
                null, database, time);
        }
        else
        {
            var path = Path.Combine(Path.GetTempPath(), $"b25-stores-{Guid.NewGuid():N}.db");
            stores = new TestStores(new StorageOptions { ConnectionString = $"Data Source={path}", ReplicaName = replica ?? "" }, path, null, time);
        }
        if (migrate) await stores.Provider.MigrateAsync();
        return stores;
    }

    /// <summary>Another replica's view of the same database (its own provider, pool and name).</summary>
    public TestStores Replica(string name, TimeProvider? time = null) =>
        new(new StorageOptions { Provider = Options.Provider, ConnectionString = Options.ConnectionString, ReplicaName = name },
            null, null, time ?? TimeProvider.System);

    /// <summary>A connection for the test's own SQL (written in the dialect both providers accept).</summary>
    public Task<DbConnection> OpenAsync() => Provider.OpenAsync();

    public async ValueTask DisposeAsync()
    {
        if (Provider is IAsyncDisposable disposable) await disposable.DisposeAsync();
        if (_sqlitePath is not null)
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            foreach (var suffix in new[] { "", "-wal", "-shm", ".lock" })
                try { File.Delete(_sqlitePath + suffix); } catch (IOException) { }
        }
        if (_postgresDatabase is not null) await SharedPostgres.DropDatabaseAsync(_postgresDatabase);
    }
}

/// <summary>
/// The PostgreSQL server of a test run: B25_TEST_POSTGRES (an admin connection string) when set, else a
/// throwaway server started once for the run and stopped when the run ends.
/// </summary>
public static class SharedPostgres
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static string? _admin;
    private static PostgresServer? _server;

    /// <summary>The run's server, when this run started it.</summary>
    public static PostgresServer? Server => _server;

    public static async Task<string> AdminConnectionStringAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (_admin is not null) return _admin;
            if (Environment.GetEnvironmentVariable("B25_TEST_POSTGRES") is { Length: > 0 } given) return _admin = given;
            var server = new PostgresServer();
            await server.InitializeAsync();
            _server = server;
            AppDomain.CurrentDomain.ProcessExit += (_, _) => server.StopWithoutWaiting();
            return _admin = server.ConnectionString("postgres");
        }
        finally
        {
            Gate.Release();
        }
    }

    public static async Task<(string ConnectionString, string Database)> CreateDatabaseAsync()
    {
        var admin = await AdminConnectionStringAsync();
        var database = $"b25_{Guid.NewGuid():N}";
        await using (var connection = new NpgsqlConnection(admin))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {database}", connection);
            await create.ExecuteNonQueryAsync();
        }
        var builder = new NpgsqlConnectionStringBuilder(admin) { Database = database };
        return (builder.ConnectionString, database);
    }

    public static async Task DropDatabaseAsync(string database)
    {
        try
        {
            await using var connection = new NpgsqlConnection(await AdminConnectionStringAsync());
            await connection.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {database} WITH (FORCE)", connection);
            await drop.ExecuteNonQueryAsync();
        }
        catch (NpgsqlException)
        {
            // The server may be down (a fault test): the whole server goes at the end of the run.
        }
    }
}

/// <summary>A test of SQLite's own behaviour (its file, its locks): skipped when the run is for PostgreSQL.</summary>
public sealed class SqliteFactAttribute : FactAttribute
{
    public SqliteFactAttribute()
    {
        if (TestStores.Postgres) Skip = "SQLite only: this run is for PostgreSQL";
    }
}
