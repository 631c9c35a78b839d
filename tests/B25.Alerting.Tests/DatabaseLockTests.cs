using System.Net;
using B25.Alerting.Storage;
using B25.Alerting.Storage.Sqlite;
using B25.Alerting.Tests.Support;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Tests;

/// <summary>One process per SQLite file: a second process on the same file refuses to start and changes nothing.</summary>
public sealed class DatabaseLockTests : IDisposable
{
    private readonly SlackStandIn _slack = new();
    private readonly string _db = Path.Combine(Path.GetTempPath(), $"b25-lock-{Guid.NewGuid():N}.db");

    public void Dispose()
    {
        _slack.Dispose();
        SqliteConnection.ClearAllPools();
        foreach (var suffix in new[] { "", "-wal", "-shm", ".lock" }) File.Delete(_db + suffix);
    }

    private string Refusal => $"Storage: another B25.Alerting process holds {_db} (lock file {_db}.lock); one process per SQLite file.";

    [Fact]
    public async Task Second_process_on_the_same_file_exits_1_with_one_line_and_the_first_keeps_serving()
    {
        var environment = ServiceProcess.Settings(_db, _slack);
        await using (var first = await ServiceProcess.StartAsync(environment))
        {
            var (exitCode, output) = await ServiceProcess.RunToExitAsync(environment);

            Assert.Equal(1, exitCode);
            Assert.Single(output.Split('\n'), line => line.Contains(Refusal));
            Assert.DoesNotContain("Exception", output);
            using var http = new HttpClient();
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"{first.BaseUrl}/health/ready")).StatusCode);

            // A crash releases the lock with the process: the next start needs no clean-up.
            await first.KillAsync();
        }
        await using var next = await ServiceProcess.StartAsync(environment);
    }

    [Fact]
    public async Task Refused_process_neither_creates_nor_migrates_the_database()
    {
        using (var held = new DatabaseLock(Options.Create(new StorageOptions { ConnectionString = $"Data Source={_db}" })))
        {
            Assert.True(held.TryAcquire());

            var (exitCode, output) = await ServiceProcess.RunToExitAsync(ServiceProcess.Settings(_db, _slack));

            Assert.Equal(1, exitCode);
            Assert.Contains(Refusal, output);
            Assert.False(File.Exists(_db), "the refused process opened the database");
        }
    }

    [Fact]
    public void A_lock_excludes_a_second_one_until_disposed()
    {
        var options = Options.Create(new StorageOptions { ConnectionString = $"Data Source={_db}" });
        using var first = new DatabaseLock(options);
        using var second = new DatabaseLock(options);

        Assert.True(first.TryAcquire());
        Assert.False(second.TryAcquire());
        first.Dispose();
        Assert.True(second.TryAcquire());
    }

    [Theory]
    [InlineData("Data Source=:memory:")]
    [InlineData("Data Source=shared;Mode=Memory;Cache=Shared")]
    [InlineData("Data Source=file:shared?mode=memory&cache=shared")]
    [InlineData("Data Source=")]
    public void In_memory_and_temporary_databases_need_no_lock(string connectionString)
    {
        var options = Options.Create(new StorageOptions { ConnectionString = connectionString });
        using var first = new DatabaseLock(options);
        using var second = new DatabaseLock(options);

        Assert.Null(first.LockPath);
        Assert.True(first.TryAcquire());
        Assert.True(second.TryAcquire());
    }

    [Fact]
    public void The_lock_file_sits_next_to_the_database_file_as_SQLite_resolves_it()
    {
        Assert.Equal(Path.Combine(Environment.CurrentDirectory, "data", "b25.db"), DatabaseLock.FilePath("Data Source=data/b25.db"));
        Assert.Equal("/var/lib/b25/b25.db", DatabaseLock.FilePath("Data Source=/var/lib/b25/../b25/b25.db"));
        Assert.Equal("/var/lib/b25/b 25.db", DatabaseLock.FilePath("Data Source=file:///var/lib/b25/b%2025.db?cache=private"));
        Assert.Equal("/var/lib/b25.db.lock",
            new DatabaseLock(Options.Create(new StorageOptions { ConnectionString = "Data Source=/var/lib/b25.db" })).LockPath);
    }
}
