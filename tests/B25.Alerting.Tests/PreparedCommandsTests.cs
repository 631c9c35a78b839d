using B25.Alerting.Storage;
using B25.Alerting.Storage.Sqlite;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace B25.Alerting.Tests;

/// <summary>
/// The writes of a transaction on SQLite run on commands the connection keeps per SQL text: each statement is compiled once for
/// the connection, not on every call, and runs correctly again and again, after a failed run, and past the cap.
/// </summary>
public sealed class PreparedCommandsTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("b25-prepared-").FullName;
    private readonly SqliteConnection _connection;

    public PreparedCommandsTests()
    {
        _connection = new SqliteConnection($"Data Source={Path.Combine(_folder, "t.db")};Pooling=False");
        _connection.Open();
        _connection.Handle!.enable_sqlite3_next_stmt(true);
        using var create = _connection.CreateCommand();
        create.CommandText = "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, flag INTEGER, note TEXT)";
        create.ExecuteNonQuery();
    }

    public void Dispose()
    {
        _connection.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    private const string Insert = "INSERT INTO t (id, name, flag, note) VALUES (@id, @name, @flag, @note)";

    private static KeyValuePair<string, object?>[] Row(long id, string name, bool flag, string? note) =>
        [StatementBatch.P("id", id), StatementBatch.P("name", name), StatementBatch.P("flag", flag), StatementBatch.P("note", note)];

    /// <summary>The statements SQLite holds compiled on the connection (sqlite3_next_stmt walks them).</summary>
    private List<IntPtr> CompiledStatements()
    {
        var found = new List<IntPtr>();
        for (var stmt = raw.sqlite3_next_stmt(_connection.Handle, null); stmt is not null; stmt = raw.sqlite3_next_stmt(_connection.Handle, stmt))
            found.Add(stmt.DangerousGetHandle());
        return found;
    }

    private List<(long Id, string Name, long? Flag, string? Note)> All() =>
        PreparedCommands.Rows(_connection, null, "SELECT id, name, flag, note FROM t ORDER BY id", [],
            r => (r.GetInt64(0), r.GetString(1), r.IsDBNull(2) ? (long?)null : r.GetInt64(2), r.IsDBNull(3) ? null : r.GetString(3)));

    /// <summary>Inserts the row in a transaction of its own, through a statement batch, and commits.</summary>
    private async Task InsertCommittedAsync(KeyValuePair<string, object?>[] row)
    {
        var batch = new StatementBatch();
        using var tx = _connection.BeginTransaction();
        batch.Add(Insert, row);
        await batch.FlushAsync(_connection, tx, CancellationToken.None);
        tx.Commit();
    }

    [Fact]
    public async Task The_same_sql_is_compiled_once_per_connection_and_its_statement_reused_in_every_transaction()
    {
        await InsertCommittedAsync(Row(1, "a", true, null));
        var afterFirst = CompiledStatements();
        Assert.Single(afterFirst); // kept: a command made per call (Dapper) leaves none

        for (var i = 2; i <= 5; i++) await InsertCommittedAsync(Row(i, "n" + i, i % 2 == 0, "note " + i));
        Assert.Equal(afterFirst, CompiledStatements()); // the same statement, not one compiled again
        Assert.Equal(1, PreparedCommands.CountFor(_connection));

        Assert.Equal(
            [(1, "a", 1, null), (2, "n2", 1, "note 2"), (3, "n3", 0, "note 3"), (4, "n4", 1, "note 4"), (5, "n5", 0, "note 5")],
            All());
    }

    [Fact]
    public async Task A_failed_run_leaves_the_kept_statement_usable_and_rolls_back_only_its_transaction()
    {
        await InsertCommittedAsync(Row(1, "a", false, null));
        var batch = new StatementBatch();
        using (var tx = _connection.BeginTransaction())
        {
            batch.Add(Insert, Row(2, "b", false, null));
            batch.Add(Insert, Row(3, "a", false, null)); // the name is taken: UNIQUE fails
            var failure = await Assert.ThrowsAsync<SqliteException>(() => batch.FlushAsync(_connection, tx, CancellationToken.None));
            Assert.Equal(19, failure.SqliteErrorCode); // SQLITE_CONSTRAINT
            tx.Rollback();
        }
        await InsertCommittedAsync(Row(3, "c", true, "after the failure"));
        Assert.Equal([(1, "a", 0, null), (3, "c", 1, "after the failure")], All());
    }

    [Fact]
    public void A_kept_command_holds_no_value_after_its_run()
    {
        var payload = new string('x', 100_000);
        PreparedCommands.Run(_connection, null, Insert, Row(1, payload, true, payload), scalar: false);
        // The next run binds every parameter again: a missing one is an error, not the last call's value.
        var missing = Assert.Throws<InvalidOperationException>(() =>
            PreparedCommands.Run(_connection, null, Insert, [StatementBatch.P("id", 2L), StatementBatch.P("name", "b")], scalar: false));
        Assert.Contains("@flag", missing.Message, StringComparison.Ordinal);
        Assert.Single(All());
    }

    [Fact]
    public void Scalar_returns_the_first_column_of_the_first_row_or_null()
    {
        Assert.Equal(7L, PreparedCommands.Run(_connection, null, "INSERT INTO t (id, name) VALUES (@id, @name) RETURNING id",
            [StatementBatch.P("id", 7L), StatementBatch.P("name", "seven")], scalar: true));
        Assert.Null(PreparedCommands.Run(_connection, null, "SELECT note FROM t WHERE id = @id", [StatementBatch.P("id", 7L)], scalar: true));
        Assert.Null(PreparedCommands.Run(_connection, null, "SELECT id FROM t WHERE id = @id", [StatementBatch.P("id", 8L)], scalar: true));
    }

    [Fact]
    public void Past_the_cap_a_statement_runs_on_a_command_of_its_own_and_is_not_kept()
    {
        for (var i = 0; i < PreparedCommands.MaxPerConnection + 20; i++)
            PreparedCommands.Run(_connection, null, $"INSERT INTO t (id, name) VALUES (@id, @name) -- text {i}",
                [StatementBatch.P("id", (long)i), StatementBatch.P("name", "n" + i)], scalar: false);
        Assert.Equal(PreparedCommands.MaxPerConnection, PreparedCommands.CountFor(_connection));
        Assert.Equal(PreparedCommands.MaxPerConnection, CompiledStatements().Count);
        Assert.Equal(PreparedCommands.MaxPerConnection + 20, All().Count);
    }

    [Fact]
    public void Binding_a_value_looks_its_name_up_once()
    {
        // Eight rows of four values, as the service's multi-row inserts are. Microsoft.Data.Sqlite looks a bare name ("id0") up as
        // given and then with ':', '@' and '$' in front, each try a new string and its UTF-8 copy; bound as "@id0" it is one look-up.
        const int rows = 8;
        var sql = "INSERT INTO t (id, name, flag, note) VALUES " +
                  string.Join(", ", Enumerable.Range(0, rows).Select(i => $"(@id{i}, @name{i}, @flag{i}, @note{i})"));
        long next = 0;
        KeyValuePair<string, object?>[] Values() => Enumerable.Range(0, rows).SelectMany(i =>
        {
            var id = ++next;
            return new[] { StatementBatch.P("id" + i, id), StatementBatch.P("name" + i, "n" + id), StatementBatch.P("flag" + i, 1L), StatementBatch.P("note" + i, null) };
        }).ToArray();
        for (var i = 0; i < 20; i++) PreparedCommands.Run(_connection, null, sql, Values(), scalar: false); // warm: kept, JIT settled

        const int runs = 50;
        var values = Enumerable.Range(0, runs).Select(_ => Values()).ToList();
        var before = GC.GetAllocatedBytesForCurrentThread();
        foreach (var v in values) PreparedCommands.Run(_connection, null, sql, v, scalar: false);
        var perValue = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)(runs * rows * 4);

        Assert.Equal((20 + runs) * rows, All().Count);
        // Measured: about 104 bytes a value bound as "@name" (its UTF-8 name and Microsoft.Data.Sqlite's binder), about 314 with
        // the bare name. The bound sits between them.
        Assert.True(perValue < 200, $"{perValue:F0} bytes allocated per value bound");
    }
}
