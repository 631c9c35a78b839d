using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;

namespace B25.Alerting.Tests.Support;

/// <summary>
/// Waits until a service has nothing left to do in its storage: every journaled notification applied and no delivery
/// pending (sent, merged, failed or skipped). From then on nothing more is sent unless something new arrives or a timer
/// fires (escalation, the Watchdog check), so a test can count what its stand-ins received exactly instead of watching
/// for a while that nothing more comes.
/// </summary>
public static class Settled
{
    public static async Task ForAsync(Func<Task<DbConnection>> open, int timeoutMs = 20_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        long left;
        do
        {
            await using (var connection = await open())
            await using (var command = connection.CreateCommand())
            {
                command.CommandText = """
                    SELECT (SELECT count(*) FROM notifications WHERE processed_at IS NULL)
                         + (SELECT count(*) FROM deliveries WHERE status = 'pending')
                    """;
                left = Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
            }
            if (left == 0) return;
            await Task.Delay(25);
        } while (DateTime.UtcNow < deadline);
        Assert.Fail($"Timed out after {timeoutMs} ms waiting for every notification to be applied and every delivery done ({left} left)");
    }

    /// <summary>The same for a service process on an SQLite file.</summary>
    public static Task ForSqliteAsync(string databasePath, int timeoutMs = 20_000) =>
        ForAsync(async () =>
        {
            var connection = new SqliteConnection($"Data Source={databasePath};Pooling=False;Mode=ReadOnly");
            await connection.OpenAsync();
            return connection;
        }, timeoutMs);
}
