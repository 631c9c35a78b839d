using System.Data.Common;
using System.Security.Cryptography;
using System.Text;

namespace B25.Alerting.Storage;

/// <summary>
/// What differs between the databases the stores run on: connections, write transactions, locks that
/// hold across processes, the schema and its migrations, and which errors mean "busy" rather than
/// "broken". The stores' SQL is written once, in the dialect both providers accept.
/// </summary>
internal interface IStorageProvider
{
    StorageProviderKind Kind { get; }

    /// <summary>Where the state lives, for logs (an absolute file path, or host/database; never a password).</summary>
    string Location { get; }

    /// <summary>
    /// True when one process owns the store (SQLite: the file lock), so an in-process gate is enough to
    /// read a group's state before its write transaction. False: read under the group's lock.
    /// </summary>
    bool SingleProcess { get; }

    /// <param name="durable">The journal's commits: the promise behind a 2xx must survive a machine crash.</param>
    /// <param name="lockWait">How long a statement of this connection waits for a lock before it fails.</param>
    Task<DbConnection> OpenAsync(CancellationToken cancellationToken = default, bool durable = false, TimeSpan? lockWait = null);

    /// <summary>Starts a write transaction; disposing it rolls back what was not committed.</summary>
    /// <param name="urgent">The journal's writes, which a 2xx waits for, go before other writers of this process where the database has one writer.</param>
    /// <param name="groupCommit">
    /// Where the database has one writer (SQLite), the transaction may share one commit with other such writers waiting for the
    /// writer (a group commit): its commit returns once that commit is done, and fails when it fails; a transaction that ends
    /// without committing leaves the others' writes as they are. Elsewhere it is an ordinary transaction.
    /// </param>
    Task<StorageTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken = default, bool urgent = false,
        bool groupCommit = false);

    /// <summary>
    /// Holds <paramref name="key"/> until the transaction ends, against every process sharing the store
    /// (PostgreSQL: a transaction-level advisory lock). SQLite: a write transaction already excludes
    /// every other writer, and one process owns the file.
    /// </summary>
    Task LockAsync(StorageTransaction transaction, string key, CancellationToken cancellationToken = default);

    /// <summary>Holds every key, taken in the given order (give every caller the same order, or two can deadlock).</summary>
    Task LockAsync(StorageTransaction transaction, IReadOnlyList<string> keys, CancellationToken cancellationToken = default);

    /// <summary>
    /// Wakes, when the transaction commits, the delivery dispatchers of every other process sharing the
    /// store (PostgreSQL: NOTIFY). One process: nothing to do, the in-process signal does it.
    /// </summary>
    /// <param name="targets">The targets that got deliveries; null when unknown (the dispatchers look at every target).</param>
    Task WakeDeliveriesAsync(StorageTransaction transaction, IReadOnlyCollection<(string Channel, string Target)>? targets,
        CancellationToken cancellationToken = default);

    /// <summary>
    /// The statement <see cref="WakeDeliveriesAsync"/> runs, for a caller that sends it with its other writes (see
    /// <see cref="StatementBatch"/>); null when there is nothing to run.
    /// </summary>
    SqlStatement? WakeStatement(IReadOnlyCollection<(string Channel, string Target)>? targets);

    /// <summary>
    /// Calls <paramref name="wake"/> whenever another process woke the dispatchers, until cancelled, with the
    /// targets that got deliveries, or null when unknown.
    /// </summary>
    Task ListenForDeliveriesAsync(Action<IReadOnlyCollection<(string Channel, string Target)>?> wake, CancellationToken cancellationToken);

    /// <summary>Creates or upgrades the schema; safe when several replicas start at once.</summary>
    Task MigrateAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads the journaled body of notification <paramref name="seq"/> as a stream, without holding all of it in memory at
    /// once (a storm's notification is megabytes): SQLite reads the blob incrementally, PostgreSQL streams the column.
    /// <paramref name="read"/> must be done with the stream when its task completes. Null when there is no such row.
    /// </summary>
    Task<T?> ReadNotificationBodyAsync<T>(DbConnection connection, DbTransaction? transaction, long seq,
        Func<Stream, CancellationToken, ValueTask<T?>> read, CancellationToken cancellationToken);

    /// <summary>The database was busy (a lock held by another writer past the wait), not broken.</summary>
    bool IsBusy(Exception exception);

    /// <summary>A write failed: drop what the connection pool keeps that would fail again.</summary>
    void OnWriteFault(Exception exception);
}

/// <summary>A write transaction; for SQLite it also holds this process's write turn.</summary>
/// <param name="enclosed">
/// A write inside a transaction someone else owns (the warm-up's, which is rolled back): committing and disposing it leave
/// that transaction as it is.
/// </param>
/// <param name="share">A share of a group commit (see <see cref="IStorageProvider.BeginWriteAsync"/>): it commits and ends the share.</param>
internal sealed class StorageTransaction(DbConnection connection, DbTransaction transaction, Action? release = null, bool enclosed = false,
    ICommitShare? share = null)
    : IAsyncDisposable
{
    private int _released;

    public DbConnection Connection { get; } = connection;

    public DbTransaction Transaction { get; } = transaction;

    public Task CommitAsync(CancellationToken cancellationToken = default) =>
        enclosed ? Task.CompletedTask : share?.CommitAsync(cancellationToken) ?? Transaction.CommitAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (enclosed) return;
        if (share is not null)
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) share.End();
            return;
        }
        await Transaction.DisposeAsync();
        if (Interlocked.Exchange(ref _released, 1) == 0) release?.Invoke();
    }
}

/// <summary>One writer's share of a transaction that several writers commit together.</summary>
internal interface ICommitShare
{
    /// <summary>Adds the share's writes to the shared transaction and waits for its commit; throws when that commit fails.</summary>
    Task CommitAsync(CancellationToken cancellationToken);

    /// <summary>Ends the share: its writes are undone unless <see cref="CommitAsync"/> took them.</summary>
    void End();
}

internal static class StorageKeys
{
    /// <summary>A stable 64-bit number for a lock key (the same in every process and version).</summary>
    public static long Hash(string key) => BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes(key)), 0);
}

/// <summary>The service must not start: said in the log already, where it was found.</summary>
internal sealed class StartRefusedException(string reason) : Exception(reason);
