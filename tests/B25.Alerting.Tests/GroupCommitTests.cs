using System.Data.Common;
using B25.Alerting.Storage;
using B25.Alerting.Storage.Sqlite;
using B25.Alerting.Tests.Support;
using Dapper;
using Microsoft.Data.Sqlite;

namespace B25.Alerting.Tests;

/// <summary>
/// SQLite's group commit (SqliteStorage.CommitGroup): writers that wait for the writer while one applies share its
/// transaction and its commit. Each writer's commit returns only once what it wrote is committed; one that ends without
/// committing takes only its own writes back; a failed commit fails every writer in it and stores nothing of it.
/// </summary>
public sealed class GroupCommitTests
{
    private sealed class Fixture : IAsyncDisposable
    {
        private readonly TestStores _stores;

        private Fixture(TestStores stores) => _stores = stores;

        public SqliteStorage Provider => (SqliteStorage)_stores.Provider;

        public static async Task<Fixture> CreateAsync()
        {
            var stores = await TestStores.CreateAsync(migrate: false);
            await using var connection = await stores.Provider.OpenAsync();
            await connection.ExecuteAsync("""
                PRAGMA journal_mode=WAL;
                CREATE TABLE t (id INTEGER PRIMARY KEY);
                CREATE TABLE parent (id INTEGER PRIMARY KEY);
                CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
                """);
            return new Fixture(stores);
        }

        /// <summary>A writer that may join a group commit, as applying a notification begins it.</summary>
        public async Task<StorageTransaction> BeginAsync(bool urgent = false, bool groupCommit = true)
        {
            var connection = await Provider.OpenAsync(durable: urgent);
            _connections.Add(connection);
            return await Provider.BeginWriteAsync(connection, urgent: urgent, groupCommit: groupCommit);
        }

        private readonly List<DbConnection> _connections = [];

        /// <summary>
        /// a writes row 1 and commits while b waits for the writer: b is handed the turn inside a's group, and a's commit waits
        /// for the group's.
        /// </summary>
        public async Task<(StorageTransaction A, Task ACommit, StorageTransaction B)> TwoInOneGroupAsync()
        {
            var a = await BeginAsync();
            await InsertAsync(a, 1);
            var bTurn = BeginAsync();
            var aCommit = a.CommitAsync();
            return (a, aCommit, await bTurn.WaitAsync(Wait));
        }

        public static Task InsertAsync(StorageTransaction write, long id, string table = "t") =>
            write.Connection.ExecuteAsync($"INSERT INTO {table} (id) VALUES (@id)", new { id }, write.Transaction);

        /// <summary>What another connection sees: the committed rows.</summary>
        public async Task<List<long>> CommittedAsync(string table = "t")
        {
            await using var reader = await Provider.OpenAsync();
            return (await reader.QueryAsync<long>($"SELECT id FROM {table} ORDER BY id")).ToList();
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var c in _connections) await c.DisposeAsync();
            await _stores.DisposeAsync();
        }
    }

    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [SqliteFact]
    public async Task A_writer_waiting_joins_the_holders_transaction_and_the_holders_commit_returns_only_with_the_groups()
    {
        await using var f = await Fixture.CreateAsync();
        var a = await f.BeginAsync();
        await Fixture.InsertAsync(a, 1);
        var bTurn = f.BeginAsync(); // waits: a holds the writer
        Assert.False(bTurn.IsCompleted);

        var aCommit = a.CommitAsync();
        var b = await bTurn.WaitAsync(Wait); // handed the turn inside a's group
        Assert.False(aCommit.IsCompleted, "a's commit returned before the group's commit");
        Assert.Empty(await f.CommittedAsync()); // nothing committed yet: a's row waits in the group's transaction
        Assert.Equal(1L, await b.Connection.ExecuteScalarAsync<long>("SELECT count(*) FROM t", transaction: b.Transaction)); // b sees it

        await Fixture.InsertAsync(b, 2);
        await b.CommitAsync().WaitAsync(Wait);
        await aCommit.WaitAsync(Wait);
        await a.DisposeAsync();
        await b.DisposeAsync();

        Assert.Equal([1L, 2L], await f.CommittedAsync());
        Assert.Equal((1L, 2L), (f.Provider.GroupCommits, f.Provider.GroupCommitShares));
    }

    [SqliteFact]
    public async Task A_writer_that_ends_without_committing_takes_back_only_its_own_writes()
    {
        await using var f = await Fixture.CreateAsync();
        var (a, aCommit, b) = await f.TwoInOneGroupAsync();
        await Fixture.InsertAsync(b, 2);

        await b.DisposeAsync(); // b found it had nothing to do after all (an applied notification): no commit
        await aCommit.WaitAsync(Wait);
        await a.DisposeAsync();

        Assert.Equal([1L], await f.CommittedAsync());
        Assert.Equal((1L, 1L), (f.Provider.GroupCommits, f.Provider.GroupCommitShares));
    }

    [SqliteFact]
    public async Task When_the_groups_commit_fails_every_writer_in_it_gets_a_storage_fault_and_nothing_of_it_is_stored()
    {
        await using var f = await Fixture.CreateAsync();
        var (a, aCommit, b) = await f.TwoInOneGroupAsync();
        // A child without its parent, checked at the commit (a deferred foreign key): the COMMIT itself fails.
        await b.Connection.ExecuteAsync("INSERT INTO child (id, parent) VALUES (1, 99)", transaction: b.Transaction);

        var bFault = await Assert.ThrowsAsync<SqliteException>(() => b.CommitAsync().WaitAsync(Wait));
        var aFault = await Assert.ThrowsAsync<SqliteException>(() => aCommit.WaitAsync(Wait));
        await a.DisposeAsync();
        await b.DisposeAsync();

        // A storage fault (DbException, SQLite's code) for both, each its own: never counted against a notification.
        Assert.NotSame(aFault, bFault);
        Assert.Equal(19, aFault.SqliteErrorCode); // SQLITE_CONSTRAINT
        Assert.Contains("group commit", aFault.Message);
        Assert.Empty(await f.CommittedAsync());
        Assert.Empty(await f.CommittedAsync("child"));
        Assert.Equal(0L, f.Provider.GroupCommits);

        // The writer is usable again.
        await using var c = await f.BeginAsync();
        await Fixture.InsertAsync(c, 3);
        await c.CommitAsync().WaitAsync(Wait);
        Assert.Equal([3L], await f.CommittedAsync());
    }

    [SqliteFact]
    public async Task A_journal_write_waiting_goes_first_the_group_commits_without_the_writers_behind_it()
    {
        await using var f = await Fixture.CreateAsync();
        var a = await f.BeginAsync();
        await Fixture.InsertAsync(a, 1);
        var journalTurn = f.BeginAsync(urgent: true);
        var bTurn = f.BeginAsync();

        await a.CommitAsync().WaitAsync(Wait); // not held for b: the journal's write waits
        Assert.Equal([1L], await f.CommittedAsync());
        var journal = await journalTurn.WaitAsync(Wait);
        Assert.False(bTurn.IsCompleted, "b went before the journal's write");
        await Fixture.InsertAsync(journal, 2);
        await journal.CommitAsync();
        await journal.DisposeAsync();
        var b = await bTurn.WaitAsync(Wait);
        await Fixture.InsertAsync(b, 3);
        await b.CommitAsync().WaitAsync(Wait);
        await a.DisposeAsync();
        await b.DisposeAsync();

        Assert.Equal([1L, 2L, 3L], await f.CommittedAsync());
        Assert.Equal((2L, 2L), (f.Provider.GroupCommits, f.Provider.GroupCommitShares)); // a alone, b alone
    }

    [SqliteFact]
    public async Task A_writer_that_does_not_share_its_commit_ends_the_group_and_a_group_holds_at_most_the_limit()
    {
        await using var f = await Fixture.CreateAsync();
        var first = await f.BeginAsync();
        // Behind it: more joiners than a group holds, then a writer that commits alone, then one more joiner.
        var joiners = Enumerable.Range(2, SqliteStorage.MaxGroupShares).Select(_ => f.BeginAsync()).ToList();
        var alone = f.BeginAsync(groupCommit: false);
        var last = f.BeginAsync();

        async Task WriteAsync(Task<StorageTransaction> turn, long id)
        {
            var write = await turn;
            await Fixture.InsertAsync(write, id);
            await write.CommitAsync();
            await write.DisposeAsync();
        }

        var all = new List<Task> { WriteAsync(Task.FromResult(first), 1) };
        all.AddRange(joiners.Select((turn, i) => WriteAsync(turn, i + 2)));
        all.Add(WriteAsync(alone, 100));
        all.Add(WriteAsync(last, 101));
        await Task.WhenAll(all).WaitAsync(Wait);

        Assert.Equal(SqliteStorage.MaxGroupShares + 3, (await f.CommittedAsync()).Count);
        // The first MaxGroupShares in one commit, the one left over in a second (the lone writer ends it), then the last alone.
        Assert.Equal((3L, SqliteStorage.MaxGroupShares + 2L), (f.Provider.GroupCommits, f.Provider.GroupCommitShares));
    }
}
