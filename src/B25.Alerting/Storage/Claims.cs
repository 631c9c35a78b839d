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
    /// <summary>Takes or renews the claim in the caller's transaction; false when another replica holds it.</summary>
    public static async Task<bool> TakeAsync(DbConnection connection, DbTransaction tx, string scope, string name, string owner, long leaseMs, long now) =>
        await connection.ExecuteAsync(
            """
            INSERT INTO claims (scope, name, owner, expires_at) VALUES (@scope, @name, @owner, @expires)
            ON CONFLICT (scope, name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
            WHERE claims.owner = excluded.owner OR claims.expires_at < @now
            """, new { scope, name, owner, expires = now + leaseMs, now }, tx) == 1;

    /// <summary>Takes or renews the claim in a transaction of its own; always true on a store one process owns.</summary>
    public static async Task<bool> TakeAsync(IStorageProvider storage, string scope, string name, string owner, long leaseMs, long now,
        CancellationToken cancellationToken)
    {
        if (storage.SingleProcess) return true;
        await using var connection = await storage.OpenAsync(cancellationToken);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        var taken = await TakeAsync(connection, write.Transaction, scope, name, owner, leaseMs, now);
        await write.CommitAsync(cancellationToken);
        return taken;
    }
}
