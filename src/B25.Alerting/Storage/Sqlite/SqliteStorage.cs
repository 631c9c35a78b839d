using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Storage.Sqlite;

/// <summary>
/// The SQLite provider: the notification journal, incidents, alerts and deliveries in one file, in WAL
/// mode, owned by one process (<see cref="DatabaseLock"/>). The journal's commits are synchronous=FULL:
/// a notification answered 2xx survives a crash of the process and of the machine. Everything else
/// commits with synchronous=NORMAL (one fsync fewer per transaction): it survives a crash of the
/// process, and a power loss can only take the trailing commits after the last journal commit (WAL
/// keeps a prefix), which are derived from the journal and redone from it, at worst posting a message again.
/// </summary>
internal sealed class SqliteStorage : IStorageProvider, IAsyncDisposable, IDisposable
{
    private readonly string _connectionString;
    private readonly string _writerConnectionString;

    public SqliteStorage(IOptions<StorageOptions> options)
    {
        var builder = new SqliteConnectionStringBuilder(options.Value.ConnectionString)
        {
            Pooling = true,
            DefaultTimeout = 30,
        };
        _connectionString = builder.ToString();
        builder.Pooling = false;
        _writerConnectionString = builder.ToString();
        Location = DatabaseLock.FilePath(options.Value.ConnectionString) ?? "(in memory)";
    }

    public StorageProviderKind Kind => StorageProviderKind.Sqlite;

    public string Location { get; }

    public bool SingleProcess => true;

    public async Task<DbConnection> OpenAsync(CancellationToken cancellationToken = default, bool durable = false, TimeSpan? lockWait = null)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        // Per-connection settings; journal_mode=WAL is persistent and set by the migration. A pooled connection keeps what
        // it was set to, so they are set only when they differ: parsing three PRAGMAs on every open was a measurable share
        // of the service's SQLite work (several opens per incident).
        var busy = (int)(lockWait ?? TimeSpan.FromSeconds(30)).TotalMilliseconds;
        var wanted = new ConnectionSettings(durable, busy);
        var handle = connection.Handle!;
        if (!Applied.TryGetValue(handle, out var current) || current != wanted)
        {
            await connection.ExecuteAsync(
                $"PRAGMA synchronous={(durable ? "FULL" : "NORMAL")}; PRAGMA busy_timeout={busy}; PRAGMA foreign_keys=ON;");
            Applied.AddOrUpdate(handle, wanted);
        }
        return connection;
    }

    private sealed record ConnectionSettings(bool Durable, int BusyMs);

    // What each open SQLite handle (the pool's connections) was last set to; an entry goes with its handle.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<SQLitePCL.sqlite3, ConnectionSettings> Applied = new();

    // SQLite has one writer at a time. Writers of this process queue here, woken in order (the journal
    // first), instead of meeting in SQLite's busy handler, which polls with sleeps of up to 100 ms.
    private readonly WriteTurns _writeTurns = new();

    // Every write transaction of this process runs on this one connection, in turn. SQLite drops a connection's page cache
    // whenever another connection has written since its last transaction, so with writes spread over the pool's connections
    // each write read its pages again (pread was about a fifth of the writer's time while new incidents drained); with one
    // connection for all writes its cache stays valid from one write to the next. Used only by the write turn's holder.
    private SqliteConnection? _writer;
    private ConnectionSettings? _writerSettings;
    private volatile bool _reopenWriter;

    /// <summary>
    /// Waits for this process's turn, then takes SQLite's write lock at once (BEGIN IMMEDIATE: no lock-upgrade deadlocks) on the
    /// process's writer connection, with the durability and lock wait <paramref name="connection"/> was opened with. Run the
    /// transaction's statements on <see cref="StorageTransaction.Connection"/>. Disposing it rolls back what was not committed and
    /// gives the turn on. With <paramref name="groupCommit"/>, the transaction is a share of a group commit (<see cref="CommitGroup"/>).
    /// </summary>
    public async Task<StorageTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken = default, bool urgent = false,
        bool groupCommit = false)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var wanted = Applied.TryGetValue(((SqliteConnection)connection).Handle!, out var asked) ? asked : new ConnectionSettings(false, 30_000);
        groupCommit &= !urgent && !wanted.Durable;
        await _writeTurns.EnterAsync(urgent, groupCommit ? wanted : null);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // Handed the turn inside an open group (only a holder that shares it hands it over that way): join it.
            if (_group is { } open) return open.Join();
            var writer = await WriterAsync(wanted, cancellationToken);
            var transaction = writer.BeginTransaction(deferred: false);
            if (!groupCommit) return new StorageTransaction(writer, transaction, ExitTurn);
            _group = new CommitGroup(this, writer, transaction, wanted);
            return _group.Join();
        }
        catch (Exception ex)
        {
            if (ex is SqliteException) _reopenWriter = true;
            EndTurn();
            throw;
        }
    }

    /// <summary>Gives the write turn on; after <see cref="Dispose"/>, the holder closes the writer connection first.</summary>
    private void ExitTurn()
    {
        if (_disposed) CloseWriter();
        _writeTurns.Exit();
    }

    private void CloseWriter()
    {
        _writer?.Dispose();
        _writer = null;
    }

    /// <summary>Ends the turn of a writer that holds it: commits the open group first, if there is one.</summary>
    private void EndTurn()
    {
        _group?.Finish();
        ExitTurn();
    }

    // Most shares in one group commit: the first share's commit waits for the writes of the others.
    internal const int MaxGroupShares = 8;

    // The group commit in progress (its transaction open on the writer connection), or null. Used only by the write turn's holder.
    private CommitGroup? _group;

    /// <summary>Group commits done by this provider (written under the write turn).</summary>
    internal long GroupCommits { get; private set; }

    /// <summary>Writers' transactions committed in them.</summary>
    internal long GroupCommitShares { get; private set; }

    /// <summary>
    /// Write transactions of several writers committed as one SQLite transaction, while writers that can join wait for the turn:
    /// applying new incidents, each transaction touches the same end pages of the same tables and indexes as the next, and
    /// SQLite writes every page a commit touched to the WAL, so the pages they share are written once per group instead of once
    /// per writer.
    /// <para>
    /// Each share runs in a savepoint of the group's transaction. A share that commits releases its savepoint and waits for the
    /// group's commit; one that ends without committing is rolled back to its savepoint and leaves the others' writes alone.
    /// The holder then hands the turn to the next waiter that can join (not a journal write, which goes first, and at most
    /// <see cref="MaxGroupShares"/>), or commits the group and gives the turn on. A share's commit returns when the group's
    /// COMMIT is done, exactly as its own would have: what it wrote is committed then, not before. When the COMMIT fails, or
    /// SQLite rolled the transaction back under a share (an I/O error, a full disk), every share that committed into it gets
    /// the failure and nothing of the group is stored: each retries, as after a failed commit of its own.
    /// </para>
    /// </summary>
    private sealed class CommitGroup(SqliteStorage storage, SqliteConnection writer, SqliteTransaction transaction, ConnectionSettings settings)
    {
        private readonly TaskCompletionSource _committed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _shares; // joined so far
        private int _committedShares; // released into the transaction, waiting for its commit

        public StorageTransaction Join()
        {
            _shares++;
            Statement("SAVEPOINT share;");
            return new StorageTransaction(writer, transaction, share: new Share(this));
        }

        private void Statement(string sql)
        {
            PreparedCommands.Run(writer, transaction, sql, [], scalar: false);
        }

        /// <summary>The share's holder is done: hands the turn to a writer that joins, or commits the group and gives the turn on.</summary>
        private void Next()
        {
            if (_shares < MaxGroupShares && !storage._disposed && !storage._reopenWriter && storage._writeTurns.TryHandOver(settings)) return;
            storage.EndTurn();
        }

        /// <summary>Commits what the shares committed (rolls back when none did) and tells them. Only by the turn's holder.</summary>
        public void Finish()
        {
            storage._group = null;
            try
            {
                if (_committedShares > 0) transaction.Commit();
                transaction.Dispose(); // rolls back when nothing was committed into it
            }
            catch (Exception ex)
            {
                Fail(ex);
                return;
            }
            if (_committedShares > 0)
            {
                storage.GroupCommits++;
                storage.GroupCommitShares += _committedShares;
                Observability.AlertingMetrics.SqliteGroupCommits.Inc();
                Observability.AlertingMetrics.SqliteGroupCommitShares.Inc(_committedShares);
            }
            _committed.TrySetResult();
        }

        /// <summary>Rolls the group back and gives every share that committed into it <paramref name="ex"/>; then gives the turn on when asked.</summary>
        private void Fail(Exception ex, bool exitTurn = false)
        {
            storage._group = null;
            storage._reopenWriter = true; // what the connection holds after a fault is not to be trusted
            storage.OnWriteFault(ex);
            try
            {
                transaction.Dispose(); // rolls back
            }
            catch (Exception)
            {
                // Already rolled back by SQLite (the fault), or the connection is broken: it is reopened at the next turn.
            }
            if (_committedShares > 0) _committed.TrySetException(ex); // else nobody waits for it: an unobserved fault is only noise
            if (exitTurn) storage.ExitTurn();
        }

        private sealed class Share(CommitGroup group) : ICommitShare
        {
            private bool _done;

            public async Task CommitAsync(CancellationToken cancellationToken)
            {
                ObjectDisposedException.ThrowIf(_done, this);
                cancellationToken.ThrowIfCancellationRequested();
                group.Statement("RELEASE share;"); // throws when SQLite rolled the transaction back: End() then fails the group
                _done = true;
                group._committedShares++;
                var committed = group._committed.Task;
                group.Next();
                try
                {
                    // Not cancelled: the outcome of the commit is known to its caller, as with a commit of its own. The wait is
                    // the rest of the group's writes, at most a few turns.
                    await committed;
                }
                catch (Exception ex)
                {
                    // A storage fault for every share, never the share's own: each gets its own exception (several rethrow at
                    // once), with SQLite's codes where there are some, for the callers' checks (busy, read-only).
                    var (code, extended) = ex is SqliteException sqlite ? (sqlite.SqliteErrorCode, sqlite.SqliteExtendedErrorCode) : (1, 1);
                    throw new SqliteException($"The group commit this write was part of failed: {ex.Message}", code, extended);
                }
            }

            public void End()
            {
                if (_done) return;
                _done = true;
                try
                {
                    group.Statement("ROLLBACK TO share;");
                    group.Statement("RELEASE share;");
                }
                catch (Exception ex)
                {
                    // The transaction is gone (SQLite rolled it back on a fault) or cannot be trusted: so are the shares before this one.
                    group.Fail(ex, exitTurn: true);
                    return;
                }
                group.Next();
            }
        }
    }

    /// <summary>The writer connection (opened, or opened again after a fault), set as <paramref name="wanted"/>. Only under the write turn.</summary>
    private async Task<SqliteConnection> WriterAsync(ConnectionSettings wanted, CancellationToken cancellationToken)
    {
        if (_reopenWriter || _writer is null)
        {
            _reopenWriter = false;
            if (_writer is not null) await _writer.DisposeAsync();
            _writer = null;
            _writerSettings = null;
            var opened = new SqliteConnection(_writerConnectionString);
            await opened.OpenAsync(cancellationToken);
            await opened.ExecuteAsync("PRAGMA foreign_keys=ON;");
            _writer = opened;
        }
        if (_writerSettings != wanted)
        {
            await _writer.ExecuteAsync($"PRAGMA synchronous={(wanted.Durable ? "FULL" : "NORMAL")}; PRAGMA busy_timeout={wanted.BusyMs};");
            _writerSettings = wanted;
        }
        return _writer;
    }

    private volatile bool _disposed;

    /// <summary>
    /// Closes the writer connection, but never under a transaction in progress: a worker still writing while the host shuts down
    /// (its transaction on the writer connection) keeps the connection until its turn ends, and closes it then. Closing it under
    /// the worker had SQLite roll back from two threads at once (a NullReferenceException inside Microsoft.Data.Sqlite).
    /// Writers that come later are refused (ObjectDisposedException).
    /// </summary>
    public void Dispose()
    {
        _disposed = true; // a group in progress is committed by its holder, who then closes the writer
        if (!_writeTurns.TryEnter()) return; // the holder closes it (ExitTurn)
        CloseWriter();
        _writeTurns.Exit();
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    public Task WakeDeliveriesAsync(StorageTransaction transaction, IReadOnlyCollection<(string Channel, string Target)>? targets,
        CancellationToken cancellationToken = default) => Task.CompletedTask;

    public SqlStatement? WakeStatement(IReadOnlyCollection<(string Channel, string Target)>? targets) => null;

    public Task ListenForDeliveriesAsync(Action<IReadOnlyCollection<(string Channel, string Target)>?> wake, CancellationToken cancellationToken) =>
        Task.CompletedTask;

    public Task LockAsync(StorageTransaction transaction, string key, CancellationToken cancellationToken = default) => Task.CompletedTask;

    public Task LockAsync(StorageTransaction transaction, IReadOnlyList<string> keys, CancellationToken cancellationToken = default) => Task.CompletedTask;

    public async Task<T?> ReadNotificationBodyAsync<T>(DbConnection connection, DbTransaction? transaction, long seq,
        Func<Stream, CancellationToken, ValueTask<T?>> read, CancellationToken cancellationToken)
    {
        // Incremental blob I/O (seq is the rowid): reading the column would copy the whole body into SQLite's memory and then
        // into a byte[] of ours; the blob hands it out in the reader's chunks. It reads the row as the connection sees it
        // (inside the transaction, when there is one).
        SqliteBlob blob;
        try
        {
            blob = new SqliteBlob((SqliteConnection)connection, "notifications", "body", seq, readOnly: true);
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode == 1 && ex.Message.Contains("no such rowid", StringComparison.Ordinal))
        {
            return default;
        }
        await using var stream = new SynchronousReads(blob);
        return await read(stream, cancellationToken);
    }

    /// <summary>
    /// A local file's blob read synchronously: the base stream's ReadAsync would hop to the thread pool for every chunk.
    /// </summary>
    private sealed class SynchronousReads(Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override int Read(Span<byte> buffer) => inner.Read(buffer);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Task.FromResult(inner.Read(buffer, offset, count));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(inner.Read(buffer.Span));

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }

    // SQLITE_BUSY / SQLITE_LOCKED: another connection holds the write lock past the busy timeout.
    public bool IsBusy(Exception exception) => exception is SqliteException { SqliteErrorCode: 5 or 6 };

    public void OnWriteFault(Exception exception)
    {
        // SQLite opens a file it cannot write read-only, without a word, and the pool keeps that
        // connection: once storage works again it would still refuse every write. Start afresh.
        if (exception is SqliteException { SqliteErrorCode: 8 or 10 or 13 or 14 })
        {
            SqliteConnection.ClearAllPools();
            _reopenWriter = true; // the writer connection too, at the next turn (another writer may be using it now)
        }
    }

    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await connection.ExecuteAsync("PRAGMA journal_mode=WAL;");
        var version = await connection.ExecuteScalarAsync<long>("PRAGMA user_version;");
        for (var i = (int)version; i < Migrations.Length; i++)
        {
            await using var tx = await BeginWriteAsync(connection, cancellationToken);
            await tx.Connection.ExecuteAsync(Migrations[i], transaction: tx.Transaction);
            await tx.Connection.ExecuteAsync($"PRAGMA user_version = {i + 1};", transaction: tx.Transaction);
            await tx.CommitAsync(cancellationToken);
        }
    }

    // Append only: a deployed database is at some index of this array.
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE notifications (
            seq           INTEGER PRIMARY KEY AUTOINCREMENT,
            id            TEXT NOT NULL UNIQUE,      -- content identity: same notification => same id
            group_id      TEXT NOT NULL,
            receiver      TEXT NOT NULL,
            group_key     TEXT NOT NULL,
            received_at   INTEGER NOT NULL,          -- unix ms
            body          BLOB NOT NULL,
            processed_at  INTEGER NULL,
            outcome       TEXT NULL
        );
        CREATE INDEX ix_notifications_unprocessed ON notifications(seq) WHERE processed_at IS NULL;

        CREATE TABLE incidents (
            id              TEXT PRIMARY KEY,
            group_id        TEXT NOT NULL,
            receiver        TEXT NOT NULL,
            group_key       TEXT NOT NULL,
            state           TEXT NOT NULL,           -- open | closed
            revision        INTEGER NOT NULL,
            opened_at       INTEGER NOT NULL,
            closed_at       INTEGER NULL,
            updated_at      INTEGER NOT NULL,
            group_labels    TEXT NOT NULL,
            common_labels   TEXT NOT NULL,
            common_annotations TEXT NOT NULL,
            external_url    TEXT NOT NULL
        );
        CREATE UNIQUE INDEX ux_incidents_one_open_per_group ON incidents(group_id) WHERE state = 'open';
        CREATE INDEX ix_incidents_state ON incidents(state, opened_at);

        -- Every alert occurrence ever seen per group: content wins over arrival order.
        CREATE TABLE alerts (
            group_id      TEXT NOT NULL,
            fingerprint   TEXT NOT NULL,
            starts_at     TEXT NOT NULL,             -- as sent (RFC 3339)
            status        TEXT NOT NULL,             -- firing | resolved
            incident_id   TEXT NULL REFERENCES incidents(id),
            ends_at       TEXT NULL,
            labels        TEXT NOT NULL,
            annotations   TEXT NOT NULL,
            generator_url TEXT NOT NULL,
            updated_at    INTEGER NOT NULL,
            PRIMARY KEY (group_id, fingerprint, starts_at)
        );
        CREATE INDEX ix_alerts_incident ON alerts(incident_id);

        -- One row per message to one target for one incident change; the unique key makes replays harmless.
        CREATE TABLE deliveries (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            incident_id     TEXT NOT NULL REFERENCES incidents(id),
            channel         TEXT NOT NULL,           -- slack | pagerduty | email | risk-manager
            target          TEXT NOT NULL,           -- e.g. #trading-alerts
            kind            TEXT NOT NULL,           -- per channel: post | update | reply | note (slack), trigger | resolve (pagerduty), ...
            revision        INTEGER NOT NULL,
            subject         TEXT NOT NULL DEFAULT '', -- what within the change, e.g. the alert of an emergency stop
            payload         TEXT NOT NULL,
            status          TEXT NOT NULL,           -- pending | sent | merged | failed
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            last_error      TEXT NULL,
            accepted_at     INTEGER NOT NULL,        -- when the notification behind it was accepted
            created_at      INTEGER NOT NULL,
            completed_at    INTEGER NULL,
            UNIQUE (incident_id, channel, target, kind, revision, subject)
        );
        CREATE INDEX ix_deliveries_pending ON deliveries(next_attempt_at) WHERE status = 'pending';
        CREATE INDEX ix_deliveries_incident ON deliveries(incident_id);

        -- The message a target holds for an incident (Slack: channel id + ts), edited in place.
        CREATE TABLE delivery_messages (
            incident_id   TEXT NOT NULL REFERENCES incidents(id),
            channel       TEXT NOT NULL,
            target        TEXT NOT NULL,
            address       TEXT NOT NULL,             -- Slack channel id
            message_id    TEXT NOT NULL,             -- Slack ts
            created_at    INTEGER NOT NULL,
            PRIMARY KEY (incident_id, channel, target)
        );
        """,
        """
        -- Emergency stops asked of the risk manager: one row per command (alert occurrence), with the answer.
        CREATE TABLE emergency_stops (
            command_id    TEXT PRIMARY KEY,
            incident_id   TEXT NOT NULL REFERENCES incidents(id),
            alert_name    TEXT NOT NULL,
            fingerprint   TEXT NOT NULL,
            starts_at     TEXT NOT NULL,
            scope         TEXT NOT NULL,
            status        TEXT NOT NULL,             -- requesting | requested | dry-run | suppressed | acknowledged | rejected
            requested_at  INTEGER NOT NULL,
            answered_at   INTEGER NULL,
            answered_by   TEXT NULL,
            answer        TEXT NULL
        );
        CREATE INDEX ix_emergency_stops_requested ON emergency_stops(requested_at);
        """,
        """
        -- The dispatcher's questions ("which groups of pending deliveries are due?") answered from a small
        -- covering index of pending rows, however long the delivery history grows.
        DROP INDEX ix_deliveries_pending;
        CREATE INDEX ix_deliveries_pending ON deliveries(channel, target, incident_id, next_attempt_at) WHERE status = 'pending';
        CREATE INDEX ix_notifications_processed ON notifications(processed_at) WHERE processed_at IS NOT NULL;
        """,
        """
        -- Per-group journal order: a group's unprocessed notifications, oldest first, without touching bodies.
        CREATE INDEX ix_notifications_group_unprocessed ON notifications(group_id, seq) WHERE processed_at IS NULL;
        -- Failed attempts to apply a notification (not counting storage faults); after a few it is quarantined.
        ALTER TABLE notifications ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE notifications ADD COLUMN last_error TEXT NULL;
        -- A non-idempotent call (a Slack post or thread reply) was started for this delivery at this time
        -- (unix ms) and its outcome is not known yet: reconcile with the vendor before sending again.
        ALTER TABLE deliveries ADD COLUMN sending_since INTEGER NULL;
        -- Readiness writes here: a real write, so a full or read-only disk shows as not ready.
        CREATE TABLE health_probe (id INTEGER PRIMARY KEY CHECK (id = 1), written_at INTEGER NOT NULL);
        """,
        """
        -- Named times (unix ms) the service keeps: when Alertmanager's Watchdog last arrived, since when its alarm is raised.
        CREATE TABLE heartbeats (name TEXT PRIMARY KEY, at INTEGER NOT NULL);
        """,
        """
        -- What the enrichment stage found for an incident's revision (JSON): every channel renders the same
        -- context, and a retry or an edit does not query again. Only the latest revision is kept.
        CREATE TABLE enrichments (
            incident_id TEXT NOT NULL,
            revision    INTEGER NOT NULL,
            body        TEXT NOT NULL,
            created_at  INTEGER NOT NULL,
            PRIMARY KEY (incident_id, revision)
        );
        -- How many alerts Alertmanager left out of the latest notification (its truncatedAlerts), shown on every message.
        ALTER TABLE incidents ADD COLUMN truncated_alerts INTEGER NOT NULL DEFAULT 0;
        """,
        """
        -- Who handles an incident (acknowledged: by whom, when, from where) and its Alertmanager silence, if any.
        ALTER TABLE incidents ADD COLUMN acknowledged_by TEXT NULL;
        ALTER TABLE incidents ADD COLUMN acknowledged_at INTEGER NULL;
        ALTER TABLE incidents ADD COLUMN acknowledged_via TEXT NULL;  -- slack | pagerduty | api
        ALTER TABLE incidents ADD COLUMN silence_id TEXT NULL;
        ALTER TABLE incidents ADD COLUMN silenced_until INTEGER NULL;
        ALTER TABLE incidents ADD COLUMN silenced_by TEXT NULL;
        -- Escalation reminders already queued for the incident (its route's Escalation settings).
        ALTER TABLE incidents ADD COLUMN escalations INTEGER NOT NULL DEFAULT 0;
        -- Every human action on an incident (the audit): one row per request, the same request twice is one row.
        CREATE TABLE incident_actions (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            incident_id   TEXT NOT NULL REFERENCES incidents(id),
            action_key    TEXT NOT NULL UNIQUE,      -- the request's identity (Slack action_ts, PagerDuty event id, Idempotency-Key)
            action        TEXT NOT NULL,             -- acknowledge | silence | unsilence
            actor         TEXT NOT NULL,
            source        TEXT NOT NULL,             -- slack | pagerduty | api
            requested_at  INTEGER NOT NULL,
            result        TEXT NOT NULL,             -- pending | acknowledged | already-acknowledged | already-resolved | silenced | ...
            detail        TEXT NULL,
            completed_at  INTEGER NULL
        );
        CREATE INDEX ix_incident_actions_incident ON incident_actions(incident_id, id);
        -- An emergency stop the risk manager did not answer in time: when humans were paged about it.
        ALTER TABLE emergency_stops ADD COLUMN unanswered_paged_at INTEGER NULL;
        """,
        """
        -- The emergency-stop cap counts stops by when their alerts fired (unix ms; startsAt, or the request time when
        -- startsAt lies ahead of it), not by when they were sent, so a backlog released after an outage does not trip it.
        -- Rows from before this column: their request time, the closest thing they recorded.
        ALTER TABLE emergency_stops ADD COLUMN fired_at INTEGER NULL;
        UPDATE emergency_stops SET fired_at = requested_at;
        CREATE INDEX ix_emergency_stops_fired ON emergency_stops(fired_at);
        -- The incident's message shows its emergency stops: read by incident on every render.
        CREATE INDEX ix_emergency_stops_incident ON emergency_stops(incident_id);
        """,
    ];
}
