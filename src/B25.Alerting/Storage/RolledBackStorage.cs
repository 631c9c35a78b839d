using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;

namespace B25.Alerting.Storage;

/// <summary>
/// The service's storage seen through one write transaction that is never committed: every connection a store opens is
/// that transaction's connection, every write transaction a store begins runs inside it, and disposing this rolls all of it
/// back. The start's warm-up runs the delivery path's real stores on it: their SQL runs (so it is compiled, and Dapper
/// builds its readers) but nothing is stored, and no other replica sees a row or a claim of it (uncommitted).
/// </summary>
internal sealed class RolledBackStorage : IStorageProvider, IAsyncDisposable
{
    private readonly IStorageProvider _storage;
    private readonly DbConnection _connection;
    private readonly StorageTransaction _transaction;
    private readonly EnclosedConnection _enclosed;

    private RolledBackStorage(IStorageProvider storage, DbConnection connection, StorageTransaction transaction)
    {
        _storage = storage;
        _connection = connection;
        _transaction = transaction;
        // The transaction's connection: on SQLite that is the process's writer connection, not the one opened for it.
        _enclosed = new EnclosedConnection(transaction.Connection, transaction.Transaction);
    }

    /// <summary>Opens a connection and begins the write transaction (on SQLite: takes this process's write turn until disposed).</summary>
    public static async Task<RolledBackStorage> BeginAsync(IStorageProvider storage, CancellationToken cancellationToken)
    {
        var connection = await storage.OpenAsync(cancellationToken);
        try
        {
            return new RolledBackStorage(storage, connection, await storage.BeginWriteAsync(connection, cancellationToken));
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public StorageProviderKind Kind => _storage.Kind;

    public string Location => _storage.Location;

    public bool SingleProcess => _storage.SingleProcess;

    public Task<DbConnection> OpenAsync(CancellationToken cancellationToken = default, bool durable = false, TimeSpan? lockWait = null) =>
        Task.FromResult<DbConnection>(_enclosed);

    // The real connection, as a store's write gets it from the provider (the journal writes a SQLite body by blob I/O on it);
    // the transaction enclosed, so its commit and disposal leave the rolled-back one open.
    public Task<StorageTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken = default, bool urgent = false,
        bool groupCommit = false) =>
        Task.FromResult(new StorageTransaction(_transaction.Connection, _transaction.Transaction, enclosed: true));

    public Task LockAsync(StorageTransaction transaction, string key, CancellationToken cancellationToken = default) =>
        _storage.LockAsync(_transaction, key, cancellationToken);

    // The provider reads a body on its own connection type (SQLite's blob I/O): the real connection, in the same transaction.
    public Task<T?> ReadNotificationBodyAsync<T>(DbConnection connection, DbTransaction? transaction, long seq,
        Func<Stream, CancellationToken, ValueTask<T?>> read, CancellationToken cancellationToken) =>
        _storage.ReadNotificationBodyAsync(_transaction.Connection, _transaction.Transaction, seq, read, cancellationToken);

    public Task LockAsync(StorageTransaction transaction, IReadOnlyList<string> keys, CancellationToken cancellationToken = default) =>
        _storage.LockAsync(_transaction, keys, cancellationToken);

    // Nothing is committed, so there is nothing to wake anyone for.
    public Task WakeDeliveriesAsync(StorageTransaction transaction, IReadOnlyCollection<(string Channel, string Target)>? targets,
        CancellationToken cancellationToken = default) => Task.CompletedTask;

    public SqlStatement? WakeStatement(IReadOnlyCollection<(string Channel, string Target)>? targets) => null;

    public Task ListenForDeliveriesAsync(Action<IReadOnlyCollection<(string Channel, string Target)>?> wake, CancellationToken cancellationToken) =>
        Task.CompletedTask;

    public Task MigrateAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException("A rolled-back view does not migrate.");

    public bool IsBusy(Exception exception) => _storage.IsBusy(exception);

    public void OnWriteFault(Exception exception)
    {
    }

    public async ValueTask DisposeAsync()
    {
        await _transaction.DisposeAsync(); // not committed: rolled back
        await _connection.DisposeAsync();
    }

    /// <summary>
    /// The transaction's connection as a store sees it: closing it leaves it open for the next store, and every command
    /// runs in the transaction (Microsoft.Data.Sqlite refuses a command without it while one is pending).
    /// </summary>
    private sealed class EnclosedConnection(DbConnection connection, DbTransaction transaction) : DbConnection
    {
        [AllowNull]
        public override string ConnectionString
        {
            get => connection.ConnectionString; // the same text: Dapper's per-query cache is keyed by it
            set => throw new NotSupportedException();
        }

        public override string Database => connection.Database;

        public override string DataSource => connection.DataSource;

        public override string ServerVersion => connection.ServerVersion;

        public override ConnectionState State => connection.State;

        public override void ChangeDatabase(string databaseName) => throw new NotSupportedException();

        public override void Open()
        {
        }

        public override void Close()
        {
        }

        protected override DbTransaction BeginDbTransaction(IsolationLevel isolationLevel) =>
            throw new NotSupportedException("Already in the rolled-back transaction.");

        protected override DbCommand CreateDbCommand()
        {
            var command = connection.CreateCommand();
            command.Transaction = transaction;
            return command;
        }

        protected override void Dispose(bool disposing)
        {
        }
    }
}
