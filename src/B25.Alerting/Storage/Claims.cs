using System.Data.Common;
using Dapper;
using static B25.Alerting.Storage.StatementBatch;

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
    /// (unix ms, 0 for no hold: see <see cref="HoldAsync"/>) and the claim's epoch, or null when another replica
    /// holds the claim. The epoch goes up each time the claim passes to another owner; with <paramref name="epoch"/>
    /// the claim is renewed only while it is still at that epoch, i.e. held by the caller without a break.
    /// </summary>
    public static Task<ClaimState?> TakeAsync(DbConnection connection, DbTransaction? tx, string scope, string name, string owner, long leaseMs, long now,
        long? epoch = null)
    {
        var take = TakeStatement(scope, name, owner, leaseMs, now, epoch);
        return connection.QuerySingleOrDefaultAsync<ClaimState?>(take.Sql, take.DapperParameters(), tx);
    }

    /// <summary>
    /// <see cref="TakeAsync(DbConnection, DbTransaction, string, string, string, long, long, long?)"/> as a statement to send with
    /// others (<see cref="StatementBatch"/>): its first column is the claim's not-before, its row missing when another replica holds it.
    /// </summary>
    public static SqlStatement TakeStatement(string scope, string name, string owner, long leaseMs, long now, long? epoch) =>
        new("""
            INSERT INTO claims (scope, name, owner, expires_at) VALUES (@scope, @name, @owner, @expires)
            ON CONFLICT (scope, name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at,
                epoch = CASE WHEN claims.owner = excluded.owner THEN claims.epoch ELSE claims.epoch + 1 END
            WHERE (claims.owner = excluded.owner OR claims.expires_at < @now) AND (CAST(@epoch AS BIGINT) IS NULL OR claims.epoch = @epoch)
            RETURNING not_before AS NotBefore, epoch AS Epoch
            """,
            [P("scope", scope), P("name", name), P("owner", owner), P("expires", now + leaseMs), P("now", now), P("epoch", epoch)]);

    /// <summary>The claim's epoch now (null when nobody ever held it), read in the caller's transaction.</summary>
    public static Task<long?> EpochAsync(DbConnection connection, DbTransaction tx, string scope, string name) =>
        connection.QuerySingleOrDefaultAsync<long?>("SELECT epoch FROM claims WHERE scope = @scope AND name = @name", new { scope, name }, tx);

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
        CancellationToken cancellationToken) =>
        storage.SingleProcess || await TakeAsync(storage, scope, name, owner, leaseMs, now, null, cancellationToken) is { } t && t.NotBefore <= now;

    /// <summary>
    /// <see cref="TakeAsync(DbConnection, DbTransaction, string, string, string, long, long, long?)"/> in a transaction of its own
    /// (shared stores only: one process owns a SQLite file and has no claims table): the one statement, committed as it runs, so
    /// a renewal is one round trip.
    /// </summary>
    public static async Task<ClaimState?> TakeAsync(IStorageProvider storage, string scope, string name, string owner, long leaseMs, long now,
        long? epoch, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return await TakeAsync(connection, null, scope, name, owner, leaseMs, now, epoch);
    }
}

/// <summary>A claim as taken: not before when its holder may act (unix ms), and its epoch (see <see cref="Claims.TakeAsync(DbConnection, DbTransaction, string, string, string, long, long, long?)"/>).</summary>
internal sealed record ClaimState(long NotBefore, long Epoch);
