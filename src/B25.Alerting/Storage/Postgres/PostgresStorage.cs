using System.Data;
using System.Data.Common;
using Dapper;
using Microsoft.Extensions.Options;
using Npgsql;

namespace B25.Alerting.Storage.Postgres;

/// <summary>
/// The PostgreSQL provider: several replicas share one database. Every commit is durable
/// (synchronous_commit as the server sets it, on by default). What one process did with an in-process
/// lock is done with transaction-level advisory locks, so it holds across replicas: a group's
/// journal order and its application, the emergency-stop cap. Delivery targets are claimed with leases
/// (see the outbox).
/// </summary>
internal sealed class PostgresStorage : IStorageProvider, IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly NpgsqlDataSource _listenSource;
    private readonly string _connectionString;
    private readonly Dictionary<long, NpgsqlDataSource> _lockWaitSources = [];

    public PostgresStorage(IOptions<StorageOptions> options)
    {
        var builder = new NpgsqlConnectionStringBuilder(options.Value.ConnectionString);
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = options.Value.ConnectionString };
        // Identifies the replica's sessions in pg_stat_activity.
        if (string.IsNullOrEmpty(builder.ApplicationName)) builder.ApplicationName = $"b25-alerting {options.Value.Replica}";
        // A replica cut off from PostgreSQL must find out in seconds (readiness turns 503, the load
        // balancer stops sending to it), not after Npgsql's 15 s connect timeout; keepalives find a
        // connection the network dropped without a word. Explicit settings win.
        if (!given.ContainsKey("Timeout")) builder.Timeout = 5;
        if (!given.ContainsKey("Keepalive")) builder.KeepAlive = 10;
        // No session state is left on a pooled connection (advisory locks are transaction-level, lock
        // timeouts are set per data source), so skip the DISCARD ALL round trip on every checkout: a
        // notification takes about 18 checkouts end to end.
        if (!given.ContainsKey("No Reset On Close")) builder.NoResetOnClose = true;
        // The same few dozen statements run for every notification: prepared once per connection, PostgreSQL
        // stops parsing and planning each of them on every call. The journal's multi-row inserts have one text
        // per row count, hence room for more than the distinct statements. Max Auto Prepare=0 turns it off
        // (e.g. behind a pooler that does not keep prepared statements).
        if (!given.ContainsKey("Max Auto Prepare")) builder.MaxAutoPrepare = 128;
        // Planned for each call's values all the same: a plan cached for every value, made while a table was nearly empty,
        // stays in use once it is large (measured: the open-incident lookup went from 0.02 ms to 1.1 ms per call, the top
        // statement in the database's time). Parsing is what preparing saves. Explicit settings win.
        if (!(builder.Options ?? "").Contains("plan_cache_mode", StringComparison.Ordinal))
            builder.Options = $"{builder.Options} -c plan_cache_mode=force_custom_plan".Trim();
        _connectionString = builder.ConnectionString;
        _dataSource = NpgsqlDataSource.Create(_connectionString);
        // LISTEN is session state: its connection never goes back to a pool.
        _listenSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(_connectionString) { Pooling = false }.ConnectionString);
        Location = $"postgresql://{builder.Host}:{builder.Port}/{builder.Database}";
    }

    public StorageProviderKind Kind => StorageProviderKind.Postgres;

    public string Location { get; }

    public bool SingleProcess => false;

    public async Task<DbConnection> OpenAsync(CancellationToken cancellationToken = default, bool durable = false, TimeSpan? lockWait = null)
    {
        if (lockWait is not { } wait) return await _dataSource.OpenConnectionAsync(cancellationToken);
        // A lock wait is set on the session when it connects, by a pool of its own: no SET round trip per
        // checkout, and no connection of the main pool carries it.
        var ms = Math.Max(1, (long)wait.TotalMilliseconds);
        NpgsqlDataSource source;
        lock (_lockWaitSources)
        {
            if (!_lockWaitSources.TryGetValue(ms, out source!))
                _lockWaitSources[ms] = source = NpgsqlDataSource.Create(
                    new NpgsqlConnectionStringBuilder(_connectionString) { Options = $"{new NpgsqlConnectionStringBuilder(_connectionString).Options} -c lock_timeout={ms}".Trim() }.ConnectionString);
        }
        return await source.OpenConnectionAsync(cancellationToken);
    }

    public async Task<StorageTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken = default, bool urgent = false,
        bool groupCommit = false) =>
        new(connection, await ((NpgsqlConnection)connection).BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken));

    public async Task LockAsync(StorageTransaction transaction, string key, CancellationToken cancellationToken = default)
    {
        await using var command = new NpgsqlCommand("SELECT pg_advisory_xact_lock(@key)", (NpgsqlConnection)transaction.Connection,
            (NpgsqlTransaction)transaction.Transaction);
        command.Parameters.AddWithValue("key", StorageKeys.Hash(key));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task LockAsync(StorageTransaction transaction, IReadOnlyList<string> keys, CancellationToken cancellationToken = default)
    {
        if (keys.Count == 0) return;
        // One round trip; the statements run one after another, so the locks are taken in the given order.
        await using var batch = new NpgsqlBatch((NpgsqlConnection)transaction.Connection, (NpgsqlTransaction)transaction.Transaction);
        foreach (var key in keys)
        {
            var command = new NpgsqlBatchCommand("SELECT pg_advisory_xact_lock($1)");
            command.Parameters.Add(new NpgsqlParameter { Value = StorageKeys.Hash(key) });
            batch.BatchCommands.Add(command);
        }
        await batch.ExecuteNonQueryAsync(cancellationToken);
    }

    private const string WakeChannel = "b25_alerting_deliveries";

    // NOTIFY payloads stay well under PostgreSQL's 8000-byte limit; past this, the payload is left empty
    // and the listeners look at every target.
    private const int MaxWakePayload = 4000;

    public async Task WakeDeliveriesAsync(StorageTransaction transaction, IReadOnlyCollection<(string Channel, string Target)>? targets,
        CancellationToken cancellationToken = default)
    {
        var statement = WakeStatement(targets);
        await transaction.Connection.ExecuteAsync(new CommandDefinition(statement.Sql, statement.DapperParameters(), transaction.Transaction,
            cancellationToken: cancellationToken));
    }

    // Delivered at commit, to every listening session; the same payload twice in one transaction arrives once.
    public SqlStatement WakeStatement(IReadOnlyCollection<(string Channel, string Target)>? targets) =>
        new("SELECT pg_notify(@channel, @payload)",
            [StatementBatch.P("channel", WakeChannel), StatementBatch.P("payload", WakePayload.Write(targets, MaxWakePayload))]);

    public async Task ListenForDeliveriesAsync(Action<IReadOnlyCollection<(string Channel, string Target)>?> wake, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _listenSource.OpenConnectionAsync(cancellationToken);
                connection.Notification += (_, e) => wake(WakePayload.Read(e.Payload));
                await using (var listen = new NpgsqlCommand($"LISTEN {WakeChannel}", connection))
                    await listen.ExecuteNonQueryAsync(cancellationToken);
                wake(null); // whatever was queued while not listening
                while (true) await connection.WaitAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // Down or cut off: the dispatcher still polls every second; listen again shortly.
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            }
        }
    }

    public async Task<T?> ReadNotificationBodyAsync<T>(DbConnection connection, DbTransaction? transaction, long seq,
        Func<Stream, CancellationToken, ValueTask<T?>> read, CancellationToken cancellationToken)
    {
        // Sequential access: the column is streamed from the connection's buffer instead of being read into one byte[].
        await using var command = new NpgsqlCommand("SELECT body FROM notifications WHERE seq = @seq", (NpgsqlConnection)connection,
            (NpgsqlTransaction?)transaction);
        command.Parameters.AddWithValue("seq", seq);
        await using var reader = await command.ExecuteReaderAsync(CommandBehavior.SequentialAccess | CommandBehavior.SingleRow, cancellationToken);
        if (!await reader.ReadAsync(cancellationToken)) return default;
        await using var stream = await reader.GetStreamAsync(0, cancellationToken);
        return await read(stream, cancellationToken);
    }

    // lock_not_available (lock_timeout), query_canceled (statement_timeout).
    public bool IsBusy(Exception exception) => exception is PostgresException { SqlState: "55P03" or "57014" };

    public void OnWriteFault(Exception exception)
    {
        // A server restart or a cut connection: pooled connections are dead, open fresh ones.
        if (exception is NpgsqlException and not PostgresException)
        {
            _dataSource.Clear();
            lock (_lockWaitSources)
                foreach (var source in _lockWaitSources.Values) source.Clear();
        }
    }

    /// <summary>
    /// Applies the migrations under a session advisory lock: replicas starting at once take turns, and
    /// each applies only what the one before it did not.
    /// </summary>
    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        // A schema that is already current needs no lock: a replica starting while another holds the lock (migrating, or cut
        // off from the database with the lock held until its session is gone) must not wait for it.
        if (await connection.ExecuteScalarAsync<bool>("SELECT to_regclass('b25_schema') IS NOT NULL")
            && await connection.ExecuteScalarAsync<long?>("SELECT MAX(version) FROM b25_schema") >= Migrations.Length)
            return;
        var key = StorageKeys.Hash("b25-alerting:migrate");
        await connection.ExecuteAsync("SELECT pg_advisory_lock(@key)", new { key });
        try
        {
            await connection.ExecuteAsync("CREATE TABLE IF NOT EXISTS b25_schema (version BIGINT NOT NULL)");
            var version = await connection.ExecuteScalarAsync<long?>("SELECT MAX(version) FROM b25_schema") ?? 0;
            for (var i = (int)version; i < Migrations.Length; i++)
            {
                await using var tx = await connection.BeginTransactionAsync(cancellationToken);
                await connection.ExecuteAsync(Migrations[i], transaction: tx);
                await connection.ExecuteAsync("INSERT INTO b25_schema (version) VALUES (@v)", new { v = i + 1 }, tx);
                await tx.CommitAsync(cancellationToken);
            }
        }
        finally
        {
            await connection.ExecuteAsync("SELECT pg_advisory_unlock(@key)", new { key });
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _dataSource.DisposeAsync();
        await _listenSource.DisposeAsync();
        List<NpgsqlDataSource> sources;
        lock (_lockWaitSources) sources = [.. _lockWaitSources.Values];
        foreach (var source in sources) await source.DisposeAsync();
    }

    /// <summary>The schema version a migrated database is at: one per migration.</summary>
    internal static int SchemaVersion => Migrations.Length;

    // Append only: a deployed database is at some index of this array. The same tables as the SQLite
    // provider's, in PostgreSQL's types (unix ms as BIGINT, JSON as TEXT).
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE notifications (
            seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id            TEXT NOT NULL UNIQUE,
            group_id      TEXT NOT NULL,
            receiver      TEXT NOT NULL,
            group_key     TEXT NOT NULL,
            received_at   BIGINT NOT NULL,
            body          BYTEA NOT NULL,
            processed_at  BIGINT NULL,
            outcome       TEXT NULL,
            attempts      BIGINT NOT NULL DEFAULT 0,
            last_error    TEXT NULL
        );
        CREATE INDEX ix_notifications_group_unprocessed ON notifications(group_id, seq) WHERE processed_at IS NULL;
        CREATE INDEX ix_notifications_processed ON notifications(processed_at) WHERE processed_at IS NOT NULL;

        CREATE TABLE incidents (
            id              TEXT PRIMARY KEY,
            group_id        TEXT NOT NULL,
            receiver        TEXT NOT NULL,
            group_key       TEXT NOT NULL,
            state           TEXT NOT NULL,
            revision        BIGINT NOT NULL,
            opened_at       BIGINT NOT NULL,
            closed_at       BIGINT NULL,
            updated_at      BIGINT NOT NULL,
            group_labels    TEXT NOT NULL,
            common_labels   TEXT NOT NULL,
            common_annotations TEXT NOT NULL,
            external_url    TEXT NOT NULL
        );
        CREATE UNIQUE INDEX ux_incidents_one_open_per_group ON incidents(group_id) WHERE state = 'open';
        CREATE INDEX ix_incidents_state ON incidents(state, opened_at);

        CREATE TABLE alerts (
            group_id      TEXT NOT NULL,
            fingerprint   TEXT NOT NULL,
            starts_at     TEXT NOT NULL,
            status        TEXT NOT NULL,
            incident_id   TEXT NULL REFERENCES incidents(id),
            ends_at       TEXT NULL,
            labels        TEXT NOT NULL,
            annotations   TEXT NOT NULL,
            generator_url TEXT NOT NULL,
            updated_at    BIGINT NOT NULL,
            PRIMARY KEY (group_id, fingerprint, starts_at)
        );
        CREATE INDEX ix_alerts_incident ON alerts(incident_id);

        CREATE TABLE deliveries (
            id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            incident_id     TEXT NOT NULL REFERENCES incidents(id),
            channel         TEXT NOT NULL,
            target          TEXT NOT NULL,
            kind            TEXT NOT NULL,
            revision        BIGINT NOT NULL,
            subject         TEXT NOT NULL DEFAULT '',
            payload         TEXT NOT NULL,
            status          TEXT NOT NULL,
            attempts        BIGINT NOT NULL DEFAULT 0,
            next_attempt_at BIGINT NOT NULL,
            last_error      TEXT NULL,
            accepted_at     BIGINT NOT NULL,
            created_at      BIGINT NOT NULL,
            completed_at    BIGINT NULL,
            sending_since   BIGINT NULL,
            UNIQUE (incident_id, channel, target, kind, revision, subject)
        );
        CREATE INDEX ix_deliveries_pending ON deliveries(channel, target, incident_id, next_attempt_at) WHERE status = 'pending';
        CREATE INDEX ix_deliveries_incident ON deliveries(incident_id);

        CREATE TABLE delivery_messages (
            incident_id   TEXT NOT NULL REFERENCES incidents(id),
            channel       TEXT NOT NULL,
            target        TEXT NOT NULL,
            address       TEXT NOT NULL,
            message_id    TEXT NOT NULL,
            created_at    BIGINT NOT NULL,
            PRIMARY KEY (incident_id, channel, target)
        );

        CREATE TABLE emergency_stops (
            command_id    TEXT PRIMARY KEY,
            incident_id   TEXT NOT NULL REFERENCES incidents(id),
            alert_name    TEXT NOT NULL,
            fingerprint   TEXT NOT NULL,
            starts_at     TEXT NOT NULL,
            scope         TEXT NOT NULL,
            status        TEXT NOT NULL,
            requested_at  BIGINT NOT NULL,
            answered_at   BIGINT NULL,
            answered_by   TEXT NULL,
            answer        TEXT NULL
        );
        CREATE INDEX ix_emergency_stops_requested ON emergency_stops(requested_at);

        CREATE TABLE health_probe (id BIGINT PRIMARY KEY CHECK (id = 1), written_at BIGINT NOT NULL);

        -- Leases: the replica that sends to a target (scope = channel, name = target) or does a chore for
        -- the cluster (scope 'chore'), until expires_at (unix ms). One sender per target keeps its messages
        -- in order and its rate limit for the whole cluster.
        CREATE TABLE claims (
            scope       TEXT NOT NULL,
            name        TEXT NOT NULL,
            owner       TEXT NOT NULL,
            expires_at  BIGINT NOT NULL,
            PRIMARY KEY (scope, name)
        );
        """,
        """
        -- Named times (unix ms) the service keeps: when Alertmanager's Watchdog last arrived, since when its alarm is raised.
        CREATE TABLE heartbeats (name TEXT PRIMARY KEY, at BIGINT NOT NULL);
        """,
        """
        -- A hold on a claim: its holder, now or after a takeover, acts not before this (unix ms): a vendor's Retry-After.
        ALTER TABLE claims ADD COLUMN not_before BIGINT NOT NULL DEFAULT 0;
        """,
        """
        -- What the enrichment stage found for an incident's revision (JSON); only the latest revision is kept.
        CREATE TABLE enrichments (
            incident_id TEXT NOT NULL,
            revision    BIGINT NOT NULL,
            body        TEXT NOT NULL,
            created_at  BIGINT NOT NULL,
            PRIMARY KEY (incident_id, revision)
        );
        -- How many alerts Alertmanager left out of the latest notification (its truncatedAlerts), shown on every message.
        ALTER TABLE incidents ADD COLUMN truncated_alerts BIGINT NOT NULL DEFAULT 0;
        """,
        """
        -- Who handles an incident and its Alertmanager silence; escalation reminders queued; the audit of human actions.
        ALTER TABLE incidents ADD COLUMN acknowledged_by TEXT NULL;
        ALTER TABLE incidents ADD COLUMN acknowledged_at BIGINT NULL;
        ALTER TABLE incidents ADD COLUMN acknowledged_via TEXT NULL;
        ALTER TABLE incidents ADD COLUMN silence_id TEXT NULL;
        ALTER TABLE incidents ADD COLUMN silenced_until BIGINT NULL;
        ALTER TABLE incidents ADD COLUMN silenced_by TEXT NULL;
        ALTER TABLE incidents ADD COLUMN escalations BIGINT NOT NULL DEFAULT 0;
        CREATE TABLE incident_actions (
            id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            incident_id   TEXT NOT NULL REFERENCES incidents(id),
            action_key    TEXT NOT NULL UNIQUE,
            action        TEXT NOT NULL,
            actor         TEXT NOT NULL,
            source        TEXT NOT NULL,
            requested_at  BIGINT NOT NULL,
            result        TEXT NOT NULL,
            detail        TEXT NULL,
            completed_at  BIGINT NULL
        );
        CREATE INDEX ix_incident_actions_incident ON incident_actions(incident_id, id);
        ALTER TABLE emergency_stops ADD COLUMN unanswered_paged_at BIGINT NULL;
        """,
        """
        -- The emergency-stop cap counts stops by when their alerts fired (unix ms; startsAt, or the request time when
        -- startsAt lies ahead of it), not by when they were sent, so a backlog released after an outage does not trip it.
        -- Rows from before this column: their request time, the closest thing they recorded.
        ALTER TABLE emergency_stops ADD COLUMN fired_at BIGINT NULL;
        UPDATE emergency_stops SET fired_at = requested_at;
        CREATE INDEX ix_emergency_stops_fired ON emergency_stops(fired_at);
        -- The incident's message shows its emergency stops: read by incident on every render.
        CREATE INDEX ix_emergency_stops_incident ON emergency_stops(incident_id);
        """,
        """
        -- Goes up each time a claim passes to another owner: a replica that took a target at one epoch and finds another
        -- knows that someone else held it in between, and leaves the scheduling of what it sent to the owner.
        ALTER TABLE claims ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
        """,
    ];
}
