using System.Data.Common;
using Dapper;
using static B25.Alerting.Storage.StatementBatch;

namespace B25.Alerting.Storage;

/// <summary>A journaled notification as the processor applies it.</summary>
internal sealed record JournalRow(long Seq, string GroupId, long ReceivedAt, byte[]? Body, long? ProcessedAt);

internal sealed record OpenIncident(string Id, long Revision);

internal sealed record StoredAlert(string Fingerprint, string StartsAt, string Status);

internal sealed record NewIncident(string Id, string GroupId, string Receiver, string GroupKey, long Now,
    string GroupLabels, string CommonLabels, string CommonAnnotations, string ExternalUrl, long TruncatedAlerts = 0);

internal sealed record IncidentUpdate(string Id, long Revision, bool Close, long Now, string CommonLabels, string CommonAnnotations, string ExternalUrl,
    long TruncatedAlerts = 0);

/// <summary>One alert occurrence as written: status firing or resolved; EndsAt RFC 3339 or null.</summary>
internal sealed record AlertRecord(string Fingerprint, string StartsAt, string Status, string? EndsAt, string Labels, string Annotations,
    string GeneratorUrl);

internal sealed record NewDelivery(string IncidentId, string Channel, string Target, string Kind, long Revision, string Subject, string Payload,
    long AcceptedAt, long Now);

/// <summary>Incidents and alerts: applying a group's notifications, one group at a time across every process.</summary>
internal interface IIncidentStore
{
    /// <summary>
    /// Opens a unit of work on one alert group. On a store one process owns (SQLite), reads happen
    /// before <see cref="IGroupWork.BeginWriteAsync"/> (so reading a large notification does not hold the
    /// single writer) and the caller keeps one worker per group; on a shared store, the group's lock is
    /// taken here and held to the end, so what is read stays true until the commit.
    /// </summary>
    Task<IGroupWork> OpenGroupAsync(string groupId, CancellationToken cancellationToken);
}

/// <summary>Reads and writes of one alert group, committed together (the outbox's deliveries included).</summary>
internal interface IGroupWork : IAsyncDisposable
{
    Task<JournalRow?> LoadNotificationAsync(string notificationId, bool withBody = true);

    /// <summary>
    /// Reads the journaled body of the notification <paramref name="seq"/> through <paramref name="read"/> as a stream, so a
    /// storm's body is not held whole in memory while it is bound (null when the row is gone).
    /// </summary>
    Task<T?> ReadBodyAsync<T>(long seq, Func<Stream, CancellationToken, ValueTask<T?>> read, CancellationToken cancellationToken);

    Task<OpenIncident?> OpenIncidentAsync();

    Task<IReadOnlyList<StoredAlert>> AlertsOfAsync(string incidentId);

    /// <summary>The status (firing or resolved) of each of these occurrences the group has seen; unseen ones are left out.</summary>
    Task<Dictionary<(string Fingerprint, string StartsAt), string>> AlertStatusesAsync(IReadOnlyCollection<(string Fingerprint, string StartsAt)> keys);

    /// <summary>
    /// True when the reads are made under the group's lock (a shared store: taken when the work opens), so what they
    /// found holds until the commit; false when they are made before <see cref="BeginWriteAsync"/> and must be checked
    /// again in the write.
    /// </summary>
    bool ReadsUnderLock { get; }

    /// <summary>Starts the write transaction (nothing to do when the group's lock already opened one).</summary>
    Task BeginWriteAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Runs the writes queued so far. Writes are queued and sent together (one round trip on PostgreSQL) before the next
    /// read and at the commit; this runs them without committing (the start's warm-up, which rolls back).
    /// </summary>
    Task FlushAsync(CancellationToken cancellationToken);

    Task InsertIncidentAsync(NewIncident incident);

    Task UpdateIncidentAsync(IncidentUpdate update);

    /// <summary>Remembers occurrences (an occurrence already known is left as it is).</summary>
    Task InsertAlertsAsync(string? incidentId, IEnumerable<AlertRecord> alerts, long now);

    Task ResolveAlertsAsync(IEnumerable<AlertRecord> alerts, long now);

    /// <summary>The targets that already have deliveries for the incident.</summary>
    Task<IReadOnlyList<(string Channel, string Target)>> TargetsOfAsync(string incidentId);

    /// <summary>Queues a delivery in the outbox; the same (incident, channel, target, kind, revision, subject) twice is queued once.</summary>
    Task AddDeliveryAsync(NewDelivery delivery);

    /// <summary>The targets <see cref="AddDeliveryAsync"/> queued deliveries for.</summary>
    IReadOnlyCollection<(string Channel, string Target)> QueuedTargets { get; }

    Task MarkAppliedAsync(long seq, string outcome, long now);

    /// <param name="wake">Deliveries were queued: wake the dispatchers of every process sharing the store.</param>
    Task CommitAsync(bool wake, CancellationToken cancellationToken);
}

internal sealed class IncidentStore(IStorageProvider storage) : IIncidentStore
{
    public async Task<IGroupWork> OpenGroupAsync(string groupId, CancellationToken cancellationToken)
    {
        var connection = await storage.OpenAsync(cancellationToken);
        var work = new GroupWork(storage, connection, groupId);
        try
        {
            if (!storage.SingleProcess) await work.BeginWriteAsync(cancellationToken);
            return work;
        }
        catch
        {
            await work.DisposeAsync();
            throw;
        }
    }

    private sealed class GroupWork(IStorageProvider storage, DbConnection connection, string groupId) : IGroupWork
    {
        private StorageTransaction? _write;
        private readonly HashSet<(string Channel, string Target)> _queuedTargets = [];
        private readonly StatementBatch _writes = new();

        private DbTransaction? Tx => _write?.Transaction;

        // The group's own connection for reads; in the write transaction, the transaction's (on SQLite, the process's writer connection).
        private DbConnection Connection => _write?.Connection ?? connection;

        // An empty blob in place of the body, without reading the body: SQLite loads the whole column for substr(body, 1, 0),
        // megabytes for a storm's notification (twice per apply); PostgreSQL reads only the slice and has no x'' for bytea.
        private string NoBody => storage.Kind == StorageProviderKind.Sqlite ? "x''" : "substr(body, 1, 0)";

        public bool ReadsUnderLock => !storage.SingleProcess;

        // Every read sees the writes queued before it.
        private async Task<DbConnection> ReadConnectionAsync()
        {
            await FlushAsync(CancellationToken.None);
            return Connection;
        }

        // In the write turn on SQLite: the process's writer connection, whose kept commands are compiled once (PreparedCommands).
        private Microsoft.Data.Sqlite.SqliteConnection? KeptWriter => _write?.Connection as Microsoft.Data.Sqlite.SqliteConnection;

        /// <summary>
        /// The rows of a read, after the queued writes: on the writer's kept command in the write turn on SQLite (read by
        /// <paramref name="read"/>), otherwise through Dapper, which maps the columns by their names onto <typeparamref name="T"/>.
        /// </summary>
        private async Task<List<T>> RowsAsync<T>(string sql, KeyValuePair<string, object?>[] parameters, Func<Microsoft.Data.Sqlite.SqliteDataReader, T> read)
        {
            var connection = await ReadConnectionAsync();
            if (KeptWriter is { } writer) return Sqlite.PreparedCommands.Rows(writer, Tx, sql, parameters, read);
            return (await connection.QueryAsync<T>(sql, new SqlStatement(sql, parameters).DapperParameters(), Tx)).AsList();
        }

        public async Task<JournalRow?> LoadNotificationAsync(string notificationId, bool withBody = true) =>
            (await RowsAsync(
                $"SELECT seq AS Seq, group_id AS GroupId, received_at AS ReceivedAt, {(withBody ? "body" : NoBody)} AS Body, processed_at AS ProcessedAt FROM notifications WHERE id = @notificationId",
                [P("notificationId", notificationId)],
                r => new JournalRow(r.GetInt64(0), r.GetString(1), r.GetInt64(2), (byte[])r.GetValue(3), r.IsDBNull(4) ? null : r.GetInt64(4))))
            .SingleOrDefault();

        public async Task<T?> ReadBodyAsync<T>(long seq, Func<Stream, CancellationToken, ValueTask<T?>> read, CancellationToken cancellationToken) =>
            await storage.ReadNotificationBodyAsync(await ReadConnectionAsync(), Tx, seq, read, cancellationToken);

        public async Task<OpenIncident?> OpenIncidentAsync() =>
            (await RowsAsync("SELECT id AS Id, revision AS Revision FROM incidents WHERE group_id = @groupId AND state = 'open'",
                [P("groupId", groupId)], r => new OpenIncident(r.GetString(0), r.GetInt64(1)))).SingleOrDefault();

        public async Task<IReadOnlyList<StoredAlert>> AlertsOfAsync(string incidentId) =>
            (await (await ReadConnectionAsync()).QueryAsync<StoredAlert>(
                "SELECT fingerprint AS Fingerprint, starts_at AS StartsAt, status AS Status FROM alerts WHERE incident_id = @incidentId",
                new { incidentId }, Tx)).ToList();

        public async Task<Dictionary<(string Fingerprint, string StartsAt), string>> AlertStatusesAsync(
            IReadOnlyCollection<(string Fingerprint, string StartsAt)> keys)
        {
            var reader = await ReadConnectionAsync();
            // In chunks, one round trip each: a storm notification names thousands of alerts.
            var found = new Dictionary<(string, string), string>();
            var wanted = keys.ToHashSet();
            foreach (var chunk in keys.Select(k => k.Fingerprint).Distinct().Chunk(Chunk))
            {
                var parameters = new DynamicParameters(new { groupId });
                var names = new string[chunk.Length];
                for (var i = 0; i < chunk.Length; i++)
                {
                    names[i] = "@f" + i;
                    parameters.Add("f" + i, chunk[i]);
                }
                foreach (var (fingerprint, startsAt, status) in await reader.QueryAsync<(string, string, string)>(
                             $"SELECT fingerprint, starts_at, status FROM alerts WHERE group_id = @groupId AND fingerprint IN ({string.Join(", ", names)})",
                             parameters, Tx))
                    if (wanted.Contains((fingerprint, startsAt))) found[(fingerprint, startsAt)] = status;
            }
            return found;
        }

        // Parameters per statement: few on SQLite, which finds each bound parameter's name by a linear search through the
        // statement's names, so binding costs the square of their number (see JournalStore's InsertChunk); PostgreSQL: many,
        // each statement is a round trip.
        private int Chunk => storage.Kind == StorageProviderKind.Sqlite ? 100 : 400;

        public async Task BeginWriteAsync(CancellationToken cancellationToken)
        {
            if (_write is not null) return;
            // Applying new incidents one after another: their transactions may share one commit (SQLite: fewer pages written).
            _write = await storage.BeginWriteAsync(Connection, cancellationToken, groupCommit: true);
            await storage.LockAsync(_write, "group:" + groupId, cancellationToken);
        }

        private StatementBatch Writes => _write is null ? throw new InvalidOperationException("BeginWriteAsync first.") : _writes;

        public Task FlushAsync(CancellationToken cancellationToken) =>
            _writes.Count == 0 ? Task.CompletedTask : _writes.FlushAsync(Connection, Tx!, cancellationToken);

        public Task InsertIncidentAsync(NewIncident incident)
        {
            Writes.Add(
                """
                INSERT INTO incidents (id, group_id, receiver, group_key, state, revision, opened_at, updated_at,
                                       group_labels, common_labels, common_annotations, external_url, truncated_alerts)
                VALUES (@Id, @GroupId, @Receiver, @GroupKey, 'open', 1, @Now, @Now,
                        @GroupLabels, @CommonLabels, @CommonAnnotations, @ExternalUrl, @TruncatedAlerts)
                """,
                P("Id", incident.Id), P("GroupId", incident.GroupId), P("Receiver", incident.Receiver), P("GroupKey", incident.GroupKey),
                P("Now", incident.Now), P("GroupLabels", incident.GroupLabels), P("CommonLabels", incident.CommonLabels),
                P("CommonAnnotations", incident.CommonAnnotations), P("ExternalUrl", incident.ExternalUrl), P("TruncatedAlerts", incident.TruncatedAlerts));
            return Task.CompletedTask;
        }

        public Task UpdateIncidentAsync(IncidentUpdate update)
        {
            Writes.Add(
                """
                UPDATE incidents SET revision = @Revision, updated_at = @Now,
                    state = CASE WHEN @Close THEN 'closed' ELSE state END,
                    closed_at = CASE WHEN @Close THEN @Now ELSE closed_at END,
                    common_labels = @CommonLabels, common_annotations = @CommonAnnotations, external_url = @ExternalUrl,
                    truncated_alerts = @TruncatedAlerts
                WHERE id = @Id
                """,
                P("Revision", update.Revision), P("Now", update.Now), P("Close", update.Close), P("CommonLabels", update.CommonLabels),
                P("CommonAnnotations", update.CommonAnnotations), P("ExternalUrl", update.ExternalUrl), P("TruncatedAlerts", update.TruncatedAlerts),
                P("Id", update.Id));
            return Task.CompletedTask;
        }

        public Task InsertAlertsAsync(string? incidentId, IEnumerable<AlertRecord> alerts, long now)
        {
            // Many rows per statement: one statement per chunk, not per alert.
            foreach (var chunk in alerts.Chunk(AlertRowsPerInsert))
            {
                var parameters = new List<KeyValuePair<string, object?>>(3 + 7 * chunk.Length) { P("groupId", groupId), P("incidentId", incidentId), P("now", now) };
                for (var i = 0; i < chunk.Length; i++)
                {
                    var a = chunk[i];
                    parameters.Add(P(IndexedName.Of("f", i), a.Fingerprint));
                    parameters.Add(P(IndexedName.Of("s", i), a.StartsAt));
                    parameters.Add(P(IndexedName.Of("st", i), a.Status));
                    parameters.Add(P(IndexedName.Of("e", i), a.EndsAt));
                    parameters.Add(P(IndexedName.Of("l", i), a.Labels));
                    parameters.Add(P(IndexedName.Of("a", i), a.Annotations));
                    parameters.Add(P(IndexedName.Of("u", i), a.GeneratorUrl));
                }
                Writes.Add(new SqlStatement(InsertAlertsSql.GetOrAdd(chunk.Length, static rows =>
                    $"""
                    INSERT INTO alerts (group_id, fingerprint, starts_at, status, incident_id, ends_at, labels, annotations, generator_url, updated_at)
                    VALUES {string.Join(", ", Enumerable.Range(0, rows).Select(i => $"(@groupId, @f{i}, @s{i}, @st{i}, @incidentId, @e{i}, @l{i}, @a{i}, @u{i}, @now)"))}
                    ON CONFLICT DO NOTHING
                    """), parameters));
            }
            return Task.CompletedTask;
        }

        // The insert's text per row count, made once.
        private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, string> InsertAlertsSql = new();

        private int AlertRowsPerInsert => storage.Kind == StorageProviderKind.Sqlite ? 8 : 100;

        public Task ResolveAlertsAsync(IEnumerable<AlertRecord> alerts, long now)
        {
            foreach (var a in alerts)
                Writes.Add(
                    """
                    UPDATE alerts SET status = 'resolved', ends_at = @EndsAt, annotations = @Annotations, updated_at = @now
                    WHERE group_id = @groupId AND fingerprint = @Fingerprint AND starts_at = @StartsAt
                    """,
                    P("EndsAt", a.EndsAt), P("Annotations", a.Annotations), P("now", now), P("groupId", groupId), P("Fingerprint", a.Fingerprint),
                    P("StartsAt", a.StartsAt));
            return Task.CompletedTask;
        }

        public async Task<IReadOnlyList<(string Channel, string Target)>> TargetsOfAsync(string incidentId) =>
            await RowsAsync("SELECT DISTINCT channel AS Channel, target AS Target FROM deliveries WHERE incident_id = @incidentId",
                [P("incidentId", incidentId)], r => (r.GetString(0), r.GetString(1)));

        public IReadOnlyCollection<(string Channel, string Target)> QueuedTargets => _queuedTargets;

        public Task AddDeliveryAsync(NewDelivery delivery)
        {
            Writes.Add(
                """
                INSERT INTO deliveries (incident_id, channel, target, kind, revision, subject, payload, status, next_attempt_at, accepted_at, created_at)
                VALUES (@IncidentId, @Channel, @Target, @Kind, @Revision, @Subject, @Payload, 'pending', @Now, @AcceptedAt, @Now)
                ON CONFLICT DO NOTHING
                """,
                P("IncidentId", delivery.IncidentId), P("Channel", delivery.Channel), P("Target", delivery.Target), P("Kind", delivery.Kind),
                P("Revision", delivery.Revision), P("Subject", delivery.Subject), P("Payload", delivery.Payload), P("Now", delivery.Now),
                P("AcceptedAt", delivery.AcceptedAt));
            _queuedTargets.Add((delivery.Channel, delivery.Target));
            return Task.CompletedTask;
        }

        public Task MarkAppliedAsync(long seq, string outcome, long now)
        {
            Writes.Add("UPDATE notifications SET processed_at = @now, outcome = @outcome WHERE seq = @seq", P("now", now), P("outcome", outcome), P("seq", seq));
            return Task.CompletedTask;
        }

        public async Task CommitAsync(bool wake, CancellationToken cancellationToken)
        {
            var write = _write ?? throw new InvalidOperationException("BeginWriteAsync first.");
            // The wake goes with the writes (one round trip on PostgreSQL); it is delivered at the commit.
            if (wake && storage.WakeStatement(_queuedTargets) is { } notify) _writes.Add(notify);
            await FlushAsync(cancellationToken);
            // The storage's transaction, not the ADO.NET one under it: one enclosed in another (the start's warm-up) commits nothing.
            await write.CommitAsync(cancellationToken);
        }

        public async ValueTask DisposeAsync()
        {
            if (_write is not null) await _write.DisposeAsync();
            await connection.DisposeAsync();
        }
    }
}
