using B25.Alerting.Webhooks;
using Dapper;
using Microsoft.Data.Sqlite;

namespace B25.Alerting.Storage;

/// <summary>A journaled notification without its body.</summary>
internal sealed record JournalHead(long Seq, string Id, string GroupId, long? ProcessedAt);

/// <summary>
/// The notification journal: what was accepted (answered 2xx), in journal order per alert group, and
/// whether it has been applied.
/// </summary>
internal interface IJournalStore
{
    /// <summary>
    /// Journals the entries in one durable transaction and returns, per entry, Inserted, Duplicate (the
    /// same content identity is journaled already), or null when <paramref name="wanted"/> said no once
    /// the write could start (its request gave up). A group's entries get increasing <c>seq</c> in
    /// commit order, across every process sharing the store.
    /// </summary>
    Task<JournalResult?[]> AppendAsync(IReadOnlyList<JournalEntry> entries, Func<int, bool> wanted, TimeSpan lockWait,
        CancellationToken cancellationToken);

    /// <summary>
    /// The notification and, read in the same statement, its group's first unapplied notification up to it (null when there is
    /// none); null when the notification is unknown.
    /// </summary>
    Task<(JournalHead Head, JournalHead? Next)?> FindWithNextAsync(string notificationId, CancellationToken cancellationToken);

    /// <summary>The group's first unapplied notification with seq at most <paramref name="upToSeq"/>.</summary>
    Task<JournalHead?> NextUnappliedAsync(string groupId, long upToSeq, CancellationToken cancellationToken);

    /// <summary>Counts a failed attempt to apply; at <paramref name="quarantineAt"/> marks it applied with outcome Quarantined. Returns the attempts so far.</summary>
    Task<long> RecordFailedAttemptAsync(long seq, string error, int quarantineAt, long now, CancellationToken cancellationToken);

    /// <summary>Per group with unapplied notifications received before the cutoff: the latest of them (ids only).</summary>
    Task<IReadOnlyList<(string Id, string GroupId)>> LatestUnappliedPerGroupAsync(long receivedBefore, int maxGroups, CancellationToken cancellationToken);

    /// <summary>Deletes up to <paramref name="max"/> notifications applied before the cutoff; returns how many.</summary>
    Task<int> PruneAsync(long appliedBefore, int max, CancellationToken cancellationToken);

    /// <summary>A real durable write, as the journal writes (readiness).</summary>
    Task ProbeWriteAsync(long now, CancellationToken cancellationToken);
}

internal sealed class JournalStore(IStorageProvider storage) : IJournalStore
{
    private const string Head = "SELECT seq AS Seq, id AS Id, group_id AS GroupId, processed_at AS ProcessedAt FROM notifications";

    public async Task<JournalResult?[]> AppendAsync(IReadOnlyList<JournalEntry> entries, Func<int, bool> wanted, TimeSpan lockWait,
        CancellationToken cancellationToken)
    {
        var results = new JournalResult?[entries.Count];
        await using var connection = await storage.OpenAsync(cancellationToken, durable: true, lockWait: lockWait);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken, urgent: true);
        // In a fixed order, so two replicas journaling overlapping groups cannot deadlock. Held to the
        // commit: a group's next seq is drawn only after its previous one is committed.
        await storage.LockAsync(write, entries.Select(e => "journal:" + e.GroupId).Distinct().Order(StringComparer.Ordinal).ToList(),
            cancellationToken);
        // Taking the write lock may have waited: leave out requests that gave up meanwhile.
        var taken = Enumerable.Range(0, entries.Count).Where(wanted).ToList();
        // On SQLite the body is written after its row, through incremental blob I/O: bound as a parameter, SQLite would copy
        // it (a transient bind) and copy it again into the row's record, two native allocations of the body's size that the
        // C heap keeps after a storm (issue 11: megabytes of resident memory per storm body, never given back).
        var sqlite = write.Connection as SqliteConnection;
        var inserted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var chunk in taken.Chunk(InsertChunk))
        {
            // One statement per chunk; rows get their seq in the order of the VALUES list, which is the batch's order.
            var values = ValuesOf(chunk, entries, bodyLater: sqlite is not null);
            if (sqlite is null)
            {
                var text = InsertSql.GetOrAdd((chunk.Length, false), InsertText);
                inserted.UnionWith(await write.Connection.QueryAsync<string>(text, new SqlStatement(text, values).DapperParameters(), write.Transaction));
                continue;
            }
            // On the writer connection's kept command for this chunk size: compiled once, not per request.
            var rows = Sqlite.PreparedCommands.Rows(sqlite, write.Transaction, InsertSql.GetOrAdd((chunk.Length, true), InsertText), values,
                static r => (Seq: r.GetInt64(0), Id: r.GetString(1)));
            foreach (var (seq, id) in rows)
            {
                // The row of an id is the chunk's first entry with it: a later one in the chunk was a conflict.
                var body = entries[chunk.First(i => entries[i].Id == id)].Body;
                if (body.Length == 0) continue;
                using var blob = new SqliteBlob(sqlite, "notifications", "body", seq);
                blob.Write(body);
            }
            inserted.UnionWith(rows.Select(r => r.Id));
        }
        // The same notification twice in one batch: the first is the one stored.
        foreach (var i in taken)
            results[i] = inserted.Remove(entries[i].Id) ? JournalResult.Inserted : JournalResult.Duplicate;
        await write.CommitAsync(cancellationToken);
        return results;
    }

    // The insert's text per (rows, SQLite), made once.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(int Rows, bool Sqlite), string> InsertSql = new();

    /// <summary>
    /// The insert of <paramref name="shape"/>'s rows: on SQLite each body is a zeroblob of its length, written after the row, and
    /// the statement returns each row's seq; elsewhere the body is bound.
    /// </summary>
    private static string InsertText((int Rows, bool Sqlite) shape)
    {
        var sql = new System.Text.StringBuilder("INSERT INTO notifications (id, group_id, receiver, group_key, received_at, body) VALUES ");
        for (var j = 0; j < shape.Rows; j++)
        {
            if (j > 0) sql.Append(", ");
            sql.Append(shape.Sqlite ? $"(@i{j}, @g{j}, @r{j}, @k{j}, @t{j}, zeroblob(@b{j}))" : $"(@i{j}, @g{j}, @r{j}, @k{j}, @t{j}, @b{j})");
        }
        sql.Append(shape.Sqlite ? " ON CONFLICT (id) DO NOTHING RETURNING seq, id" : " ON CONFLICT (id) DO NOTHING RETURNING id");
        return sql.ToString();
    }

    /// <summary>
    /// The insert's parameters for <paramref name="chunk"/>, in the statement's order; with <paramref name="bodyLater"/> each body
    /// is bound as its length (the row gets a zeroblob, written afterwards through blob I/O).
    /// </summary>
    private static List<KeyValuePair<string, object?>> ValuesOf(int[] chunk, IReadOnlyList<JournalEntry> entries, bool bodyLater)
    {
        var values = new List<KeyValuePair<string, object?>>(chunk.Length * 6);
        for (var j = 0; j < chunk.Length; j++)
        {
            var entry = entries[chunk[j]];
            values.Add(new(IndexedName.Of("i", j), entry.Id));
            values.Add(new(IndexedName.Of("g", j), entry.GroupId));
            values.Add(new(IndexedName.Of("r", j), entry.Receiver));
            values.Add(new(IndexedName.Of("k", j), entry.GroupKey));
            values.Add(new(IndexedName.Of("t", j), entry.ReceivedAt));
            values.Add(new(IndexedName.Of("b", j), bodyLater ? entry.Body.Length : entry.Body));
        }
        return values;
    }

    // Rows per statement. PostgreSQL: many, each statement is a round trip. SQLite: few, since it finds each bound parameter
    // by a linear search of the statement's names and binding costs the square of their number (6 a row). Measured (Dapper on
    // SQLite, 64 rows in one transaction): 82-89 us a row in one statement of 64, 35-37 us in statements of 8.
    private int InsertChunk => storage.Kind == StorageProviderKind.Sqlite ? 8 : 64;

    public async Task<(JournalHead Head, JournalHead? Next)?> FindWithNextAsync(string notificationId, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<HeadAndNext>(
            """
            SELECT h.seq AS Seq, h.id AS Id, h.group_id AS GroupId, h.processed_at AS ProcessedAt,
                   n.seq AS NextSeq, n.id AS NextId, n.processed_at AS NextProcessedAt
            FROM notifications h
            LEFT JOIN notifications n ON n.seq = (SELECT MIN(u.seq) FROM notifications u
                                                  WHERE u.group_id = h.group_id AND u.processed_at IS NULL AND u.seq <= h.seq)
            WHERE h.id = @notificationId
            """, new { notificationId });
        if (row is null) return null;
        var head = new JournalHead(row.Seq, row.Id, row.GroupId, row.ProcessedAt);
        return (head, row.NextSeq is { } seq ? new JournalHead(seq, row.NextId!, row.GroupId, row.NextProcessedAt) : null);
    }

    private sealed record HeadAndNext(long Seq, string Id, string GroupId, long? ProcessedAt, long? NextSeq, string? NextId, long? NextProcessedAt);

    public async Task<JournalHead?> NextUnappliedAsync(string groupId, long upToSeq, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<JournalHead>(
            $"{Head} WHERE group_id = @groupId AND processed_at IS NULL AND seq <= @upToSeq ORDER BY seq LIMIT 1", new { groupId, upToSeq });
    }

    public async Task<long> RecordFailedAttemptAsync(long seq, string error, int quarantineAt, long now, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        var tx = write.Transaction;
        var attempts = await write.Connection.ExecuteScalarAsync<long>(
            "UPDATE notifications SET attempts = attempts + 1, last_error = @error WHERE seq = @seq RETURNING attempts", new { error, seq }, tx);
        if (attempts >= quarantineAt)
            await write.Connection.ExecuteAsync(
                "UPDATE notifications SET processed_at = @now, outcome = 'Quarantined' WHERE seq = @seq AND processed_at IS NULL", new { now, seq }, tx);
        await write.CommitAsync(cancellationToken);
        return attempts;
    }

    public async Task<IReadOnlyList<(string Id, string GroupId)>> LatestUnappliedPerGroupAsync(long receivedBefore, int maxGroups,
        CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<(string Id, string GroupId)>(
            """
            SELECT n.id AS Id, n.group_id AS GroupId
            FROM notifications n
            JOIN (SELECT MAX(seq) AS seq FROM notifications
                  WHERE processed_at IS NULL AND received_at <= @receivedBefore GROUP BY group_id) latest ON latest.seq = n.seq
            ORDER BY n.seq LIMIT @maxGroups
            """, new { receivedBefore, maxGroups })).ToList();
    }

    public async Task<int> PruneAsync(long appliedBefore, int max, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        var deleted = await write.Connection.ExecuteAsync(
            "DELETE FROM notifications WHERE seq IN (SELECT seq FROM notifications WHERE processed_at IS NOT NULL AND processed_at < @appliedBefore LIMIT @max)",
            new { appliedBefore, max }, write.Transaction);
        await write.CommitAsync(cancellationToken);
        return deleted;
    }

    public async Task ProbeWriteAsync(long now, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken, durable: true);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        await write.Connection.ExecuteAsync(
            "INSERT INTO health_probe (id, written_at) VALUES (1, @now) ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at",
            new { now }, write.Transaction);
        await write.CommitAsync(cancellationToken);
    }
}
