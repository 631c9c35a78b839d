using Dapper;

namespace B25.Alerting.Storage;

/// <summary>How many incidents are open now, from storage: right after a restart, and the same on every replica.</summary>
internal sealed class IncidentCounts(IStorageProvider storage)
{
    /// <summary>Incidents not closed (open or acknowledged).</summary>
    public async Task<long> OpenAsync(CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(
            new CommandDefinition("SELECT COUNT(*) FROM incidents WHERE state <> 'closed'", cancellationToken: cancellationToken));
    }
}
