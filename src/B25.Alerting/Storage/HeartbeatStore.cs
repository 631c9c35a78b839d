using Dapper;

namespace B25.Alerting.Storage;

/// <summary>Named times shared by every replica: when the Watchdog last arrived, since when its alarm is raised.</summary>
internal interface IHeartbeatStore
{
    /// <summary>Records <paramref name="at"/> (unix ms) unless a later time is recorded already.</summary>
    Task BeatAsync(string name, long at, CancellationToken cancellationToken);

    Task<long?> LastAsync(string name, CancellationToken cancellationToken);

    /// <summary>Records the time only when the name has none; returns the time recorded (this one or the earlier one).</summary>
    Task<long> SetOnceAsync(string name, long at, CancellationToken cancellationToken);

    Task ClearAsync(string name, CancellationToken cancellationToken);
}

internal sealed class HeartbeatStore(IStorageProvider storage) : IHeartbeatStore
{
    public async Task BeatAsync(string name, long at, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        await write.Connection.ExecuteAsync(
            "INSERT INTO heartbeats (name, at) VALUES (@name, @at) ON CONFLICT (name) DO UPDATE SET at = excluded.at WHERE heartbeats.at < excluded.at",
            new { name, at }, write.Transaction);
        await write.CommitAsync(cancellationToken);
    }

    public async Task<long?> LastAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long?>("SELECT at FROM heartbeats WHERE name = @name", new { name });
    }

    public async Task<long> SetOnceAsync(string name, long at, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        await write.Connection.ExecuteAsync("INSERT INTO heartbeats (name, at) VALUES (@name, @at) ON CONFLICT (name) DO NOTHING", new { name, at }, write.Transaction);
        var recorded = await write.Connection.ExecuteScalarAsync<long>("SELECT at FROM heartbeats WHERE name = @name", new { name }, write.Transaction);
        await write.CommitAsync(cancellationToken);
        return recorded;
    }

    public async Task ClearAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        await write.Connection.ExecuteAsync("DELETE FROM heartbeats WHERE name = @name", new { name }, write.Transaction);
        await write.CommitAsync(cancellationToken);
    }
}
