using System.Data.Common;
using Dapper;

namespace B25.Alerting.Storage;

/// <summary>
/// Leases in a shared store: (scope, name) belongs to one replica until its lease expires; the holder
/// renews it by taking it again. Used for delivery targets (scope = channel) and for cluster-wide chores
/// (the recovery sweep). Only shared stores have the table: one process owns a SQLite file.
/// </summary>
internal static class Claims
{
    /// <summary>
    /// Takes or renews the claim in the caller's transaction. Returns until when the holder must not act
    /// (unix ms, 0 for no hold: see <see cref="HoldAsync"/>), or null when another replica holds the claim.
    /// </summary>
    public static Task<long?> TakeAsync(DbConnection connection, DbTransaction tx, string scope, string name, string owner, long leaseMs, long now) =>
        connection.QuerySingleOrDefaultAsync<long?>(
            """
            INSERT INTO claims (scope, name, owner, expires_at) VALUES (@scope, @name, @owner, @expires)
            ON CONFLICT (scope, name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
            WHERE claims.owner = excluded.owner OR claims.expires_at < @now
            RETURNING not_before
            """, new { scope, name, owner, expires = now + leaseMs, now }, tx);

    /// <summary>
    /// Whoever holds (scope, name), now or after a takeover, must not act before <paramref name="until"/>
    /// (a vendor's Retry-After): kept in the shared store, so it outlives the replica that was told.
    /// </summary>
    public static async Task HoldAsync(IStorageProvider storage, string scope, string name, long until, CancellationToken cancellationToken)
    {
        if (storage.SingleProcess) return; // the in-process guard keeps it
        await using var connection = await storage.OpenAsync(cancellationToken);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        await write.Connection.ExecuteAsync(
            "UPDATE claims SET not_before = CASE WHEN not_before < @until THEN @until ELSE not_before END WHERE scope = @scope AND name = @name",
            new { scope, name, until }, write.Transaction);
        await write.CommitAsync(cancellationToken);
    }

    /// <summary>
    /// Takes or renews the claim in a transaction of its own: true when this replica holds it and no hold
    /// is on it. Always true on a store one process owns.
    /// </summary>
    public static async Task<bool> TakeAsync(IStorageProvider storage, string scope, string name, string owner, long leaseMs, long now,
        CancellationToken cancellationToken)
    {
        if (storage.SingleProcess) return true;
        await using var connection = await storage.OpenAsync(cancellationToken);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        var notBefore = await TakeAsync(write.Connection, write.Transaction, scope, name, owner, leaseMs, now);
        await write.CommitAsync(cancellationToken);
        return notBefore <= now;
    }
}
