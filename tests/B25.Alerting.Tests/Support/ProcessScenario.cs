namespace B25.Alerting.Tests.Support;

/// <summary>
/// The frame of the tests that run the service as a child process (<see cref="ServiceProcess"/>): an SQLite file of its
/// own and a Slack stand-in, both gone after the test.
/// </summary>
public abstract class ProcessScenario(string name) : IDisposable
{
    protected SlackStandIn Slack { get; } = new();

    protected string DatabasePath { get; } = Path.Combine(Path.GetTempPath(), $"b25-{name}-{Guid.NewGuid():N}.db");

    public void Dispose()
    {
        Slack.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        foreach (var suffix in new[] { "", "-wal", "-shm", ".lock" }) File.Delete(DatabasePath + suffix);
        GC.SuppressFinalize(this);
    }
}
