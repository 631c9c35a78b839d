using Dapper;

namespace B25.Alerting.Storage;

/// <summary>
/// The enrichment of an incident's revision, as JSON the enrichment stage writes and reads. The first
/// one saved for a revision is the one every channel and replica renders.
/// </summary>
internal interface IEnrichmentStore
{
    Task<string?> FindAsync(string incidentId, long revision, CancellationToken cancellationToken);

    /// <summary>The latest enrichment kept for the incident, whatever its revision.</summary>
    Task<(long Revision, string Body)?> LatestAsync(string incidentId, CancellationToken cancellationToken);

    /// <summary>Saves the body unless the revision has one already; returns the one kept. Older revisions are dropped.</summary>
    Task<string> SaveAsync(string incidentId, long revision, string body, long now, CancellationToken cancellationToken);
}

internal sealed class EnrichmentStore(IStorageProvider storage) : IEnrichmentStore
{
    public async Task<string?> FindAsync(string incidentId, long revision, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<string?>(
            "SELECT body FROM enrichments WHERE incident_id = @incidentId AND revision = @revision", new { incidentId, revision });
    }

    public async Task<(long Revision, string Body)?> LatestAsync(string incidentId, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(long Revision, string Body)>(
            "SELECT revision AS Revision, body AS Body FROM enrichments WHERE incident_id = @incidentId ORDER BY revision DESC LIMIT 1",
            new { incidentId });
        return rows.Select(r => ((long, string)?)r).FirstOrDefault();
    }

    public async Task<string> SaveAsync(string incidentId, long revision, string body, long now, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken);
        await write.Connection.ExecuteAsync(
            """
            INSERT INTO enrichments (incident_id, revision, body, created_at) VALUES (@incidentId, @revision, @body, @now)
            ON CONFLICT (incident_id, revision) DO NOTHING
            """, new { incidentId, revision, body, now }, write.Transaction);
        await write.Connection.ExecuteAsync("DELETE FROM enrichments WHERE incident_id = @incidentId AND revision < @revision",
            new { incidentId, revision }, write.Transaction);
        var kept = await write.Connection.ExecuteScalarAsync<string>(
            "SELECT body FROM enrichments WHERE incident_id = @incidentId AND revision = @revision", new { incidentId, revision }, write.Transaction);
        await write.CommitAsync(cancellationToken);
        return kept!;
    }
}
