using System.Text.Json;
using B25.Alerting.Storage;
using Dapper;
using Microsoft.Data.Sqlite;

namespace B25.Alerting.Delivery.Slack;

/// <summary>Queues a note in the thread of every Slack message of an incident (through the outbox).</summary>
internal static class SlackNotes
{
    /// <param name="subject">Makes the note unique: writing the same subject twice queues it once.</param>
    public static int Add(SqliteConnection connection, SqliteTransaction tx, string incidentId, string subject, string text, long now)
    {
        var payload = JsonSerializer.Serialize(new SlackNote(text), DeliveryJsonContext.Default.SlackNote);
        return connection.Execute(
            """
            INSERT OR IGNORE INTO deliveries (incident_id, channel, target, kind, revision, subject, payload, status, next_attempt_at, accepted_at, created_at)
            SELECT DISTINCT d.incident_id, 'slack', d.target, 'note', i.revision, @subject, @payload, 'pending', @now, @now, @now
            FROM deliveries d JOIN incidents i ON i.id = d.incident_id
            WHERE d.incident_id = @incidentId AND d.channel = 'slack' AND d.kind = 'post'
            """, new { incidentId, subject, payload, now }, tx);
    }
}
