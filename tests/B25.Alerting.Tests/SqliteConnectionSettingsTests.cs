using B25.Alerting.Storage;
using B25.Alerting.Storage.Sqlite;
using B25.Alerting.Tests.Support;
using Dapper;
using Microsoft.Data.Sqlite;

namespace B25.Alerting.Tests;

/// <summary>
/// The SQLite provider sets a pooled connection's PRAGMAs only when they differ from what that connection was last set to:
/// every open still gets the durability and lock wait it asked for, whichever use the pooled connection had before.
/// </summary>
public sealed class SqliteConnectionSettingsTests
{
    [Fact]
    public async Task Every_open_gets_the_settings_it_asked_for_whatever_the_pooled_connection_was_set_to_before()
    {
        await using var stores = await TestStores.CreateAsync(migrate: false);
        if (stores.Provider.Kind != StorageProviderKind.Sqlite) return; // the PostgreSQL run has no PRAGMAs
        var provider = stores.Provider;

        async Task<(long Synchronous, long BusyMs, long ForeignKeys, object Handle)> OpenAndRead(bool durable, TimeSpan? lockWait)
        {
            await using var connection = (SqliteConnection)await provider.OpenAsync(durable: durable, lockWait: lockWait);
            return (await connection.ExecuteScalarAsync<long>("PRAGMA synchronous"), await connection.ExecuteScalarAsync<long>("PRAGMA busy_timeout"),
                await connection.ExecuteScalarAsync<long>("PRAGMA foreign_keys"), connection.Handle!);
        }

        // One after another: the pool hands out the same connection each time.
        var first = await OpenAndRead(durable: true, TimeSpan.FromSeconds(5));
        var second = await OpenAndRead(durable: false, null);
        var third = await OpenAndRead(durable: false, null);
        var fourth = await OpenAndRead(durable: true, TimeSpan.FromSeconds(5));

        Assert.Same(first.Handle, second.Handle); // else this test shows nothing about reuse
        Assert.Same(first.Handle, fourth.Handle);
        Assert.Equal((2L, 5_000L, 1L), (first.Synchronous, first.BusyMs, first.ForeignKeys)); // FULL
        Assert.Equal((1L, 30_000L, 1L), (second.Synchronous, second.BusyMs, second.ForeignKeys)); // NORMAL
        Assert.Equal((1L, 30_000L, 1L), (third.Synchronous, third.BusyMs, third.ForeignKeys));
        Assert.Equal((2L, 5_000L, 1L), (fourth.Synchronous, fourth.BusyMs, fourth.ForeignKeys));
    }

    [Fact]
    public async Task After_the_pool_is_cleared_its_new_connections_are_set_again()
    {
        await using var stores = await TestStores.CreateAsync(migrate: false);
        if (stores.Provider.Kind != StorageProviderKind.Sqlite) return;
        await using (var connection = await stores.Provider.OpenAsync(durable: true)) { }
        SqliteConnection.ClearAllPools(); // what a write fault does (SqliteStorage.OnWriteFault)
        await using var fresh = await stores.Provider.OpenAsync(durable: true);
        Assert.Equal(2L, await fresh.ExecuteScalarAsync<long>("PRAGMA synchronous"));
    }

    [Fact]
    public async Task Write_transactions_run_on_one_writer_connection_with_the_durability_and_lock_wait_their_caller_opened_with()
    {
        await using var stores = await TestStores.CreateAsync();
        if (stores.Provider.Kind != StorageProviderKind.Sqlite) return;
        var provider = stores.Provider;

        async Task<(long Synchronous, long BusyMs, object Handle)> WriteAndRead(bool durable, TimeSpan? lockWait, string name)
        {
            await using var connection = await provider.OpenAsync(durable: durable, lockWait: lockWait);
            await using var write = await provider.BeginWriteAsync(connection);
            Assert.NotSame(connection, write.Connection);
            await write.Connection.ExecuteAsync("INSERT INTO heartbeats (name, at) VALUES (@name, 1)", new { name }, write.Transaction);
            var settings = (await write.Connection.ExecuteScalarAsync<long>("PRAGMA synchronous", transaction: write.Transaction),
                await write.Connection.ExecuteScalarAsync<long>("PRAGMA busy_timeout", transaction: write.Transaction),
                (object)((SqliteConnection)write.Connection).Handle!);
            await write.CommitAsync();
            return settings;
        }

        var journal = await WriteAndRead(durable: true, TimeSpan.FromSeconds(5), "a");
        var other = await WriteAndRead(durable: false, null, "b");
        var journalAgain = await WriteAndRead(durable: true, TimeSpan.FromSeconds(5), "c");

        Assert.Same(journal.Handle, other.Handle);
        Assert.Same(journal.Handle, journalAgain.Handle);
        Assert.Equal((2L, 5_000L), (journal.Synchronous, journal.BusyMs)); // FULL: the journal's promise behind a 2xx
        Assert.Equal((1L, 30_000L), (other.Synchronous, other.BusyMs));
        Assert.Equal((2L, 5_000L), (journalAgain.Synchronous, journalAgain.BusyMs));
        await using var reader = await provider.OpenAsync();
        Assert.Equal(["a", "b", "c"], (await reader.QueryAsync<string>("SELECT name FROM heartbeats ORDER BY name")).ToList());
    }

    [Fact]
    public async Task Disposing_the_provider_under_a_write_in_progress_lets_the_write_finish_then_closes_the_writer_and_refuses_later_writes()
    {
        await using var stores = await TestStores.CreateAsync();
        if (stores.Provider.Kind != StorageProviderKind.Sqlite) return;
        var provider = (SqliteStorage)stores.Provider;
        await using var connection = await provider.OpenAsync();

        // A worker still writing while the host shuts down and disposes the provider.
        var tx = await provider.BeginWriteAsync(connection);
        provider.Dispose();
        await tx.Connection.ExecuteAsync("INSERT INTO heartbeats (name, at) VALUES ('late', 1)", transaction: tx.Transaction);
        await tx.CommitAsync();
        await tx.DisposeAsync();

        Assert.Equal(System.Data.ConnectionState.Closed, tx.Connection.State); // closed once the worker's turn ended
        await Assert.ThrowsAsync<ObjectDisposedException>(() => provider.BeginWriteAsync(connection));
        Assert.Equal(1L, await connection.ExecuteScalarAsync<long>("SELECT count(*) FROM heartbeats WHERE name = 'late'"));
    }
}
