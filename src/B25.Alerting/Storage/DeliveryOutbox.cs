using System.Data.Common;
using System.Text.Json;
using B25.Alerting.Delivery;
using Dapper;
using static B25.Alerting.Storage.StatementBatch;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Storage;

/// <summary>An (incident, target) with pending deliveries, due when all of them are.</summary>
internal sealed record DueGroup(string Channel, string Target, long DueAt);

/// <summary>What one call (or a batch's end) did: outcomes, the message a post created, when to retry the rest.</summary>
/// <param name="Epoch">The epoch of the claim the calls were made under (ignored on a store one process owns): when the claim
/// has passed to another replica since, the retries are left for the owner to schedule (see <see cref="IDeliveryOutbox.RecordAsync"/>).</param>
internal sealed record DeliveryRecord(string IncidentId, string Channel, string Target, IReadOnlyList<PendingDelivery> Batch,
    IReadOnlyList<DeliveryOutcome> Outcomes, DeliveredMessage? NewMessage, long? RetryAt, long Now, long? Epoch = null);

/// <summary>
/// This replica's hold on a delivery target: the claim's epoch, and when the renewal that confirmed it started (the
/// lease runs from no earlier than that).
/// </summary>
internal sealed record TargetClaim(long Epoch, DateTimeOffset RenewedAt);

/// <summary>This replica no longer owns the target: another one may be sending to it. Send nothing.</summary>
internal sealed class ClaimLostException(string channel, string target)
    : Exception($"The claim on {channel} {target} expired or was taken over by another replica.");

/// <summary>
/// The delivery outbox: deliveries the processor queued, who sends to which target, and what each
/// call did. One replica owns a target at a time (a claim with a lease), so a target's messages stay in
/// order and within its rate limit for the whole cluster, and a dead replica's targets pass to another.
/// </summary>
internal interface IDeliveryOutbox
{
    Task<IReadOnlyList<DueGroup>> PendingGroupsAsync(CancellationToken cancellationToken);

    Task<long> PendingCountAsync(CancellationToken cancellationToken);

    /// <summary>How long a claim lasts after its renewal (Storage:ClaimLease).</summary>
    TimeSpan ClaimLease { get; }

    /// <summary>Claims or renews the target for this replica; false when another replica holds it, or while a hold (<see cref="HoldAsync"/>) is on it.</summary>
    Task<bool> ClaimAsync(string channel, string target, CancellationToken cancellationToken);

    /// <summary>
    /// As <see cref="ClaimAsync"/>, and with <paramref name="epoch"/> only while this replica has held the target
    /// since it took it at that epoch. Null when the target is another replica's, held (<see cref="HoldAsync"/>), or
    /// the renewal took so long to commit (half a lease) that too little of the lease is left to act on.
    /// On a store one process owns: always the target, at epoch 0.
    /// </summary>
    Task<TargetClaim?> ClaimTargetAsync(string channel, string target, long? epoch, CancellationToken cancellationToken);

    /// <summary>No replica sends to the target before <paramref name="until"/> (unix ms): a vendor's Retry-After, kept for whoever owns the target next.</summary>
    Task HoldAsync(string channel, string target, long until, CancellationToken cancellationToken);

    /// <summary>The pending deliveries of up to <paramref name="maxIncidents"/> due incidents at the target, in queue order.</summary>
    Task<List<PendingDelivery>> DueAsync(string channel, string target, long now, int maxIncidents, CancellationToken cancellationToken);

    Task<DeliveredMessage?> MessageAsync(string incidentId, string channel, string target, CancellationToken cancellationToken);

    /// <summary>
    /// Marks the deliveries as being sent by a non-idempotent call, renewing the claim in the same
    /// transaction (at <paramref name="epoch"/>, when given). Throws <see cref="ClaimLostException"/> when the claim is
    /// gone (nothing marked) or the mark took half a lease to commit (marked, but do not send now).
    /// </summary>
    Task MarkSendingAsync(string channel, string target, IReadOnlyCollection<long> deliveryIds, long now, CancellationToken cancellationToken,
        long? epoch = null);

    /// <summary>
    /// Records what calls did. Sent, merged, failed and skipped deliveries are recorded whoever owns the target now
    /// (they happened). A retry is scheduled, and a send mark cleared, only while the claim is still at the record's
    /// epoch: a replica whose claim passed to another one meanwhile (it was cut off from the store) does not clear a
    /// mark the new owner relies on, or delay its sends.
    /// </summary>
    Task RecordAsync(DeliveryRecord record, CancellationToken cancellationToken);
}

internal sealed class DeliveryOutbox(IStorageProvider storage, IOptions<StorageOptions> options, TimeProvider time) : IDeliveryOutbox
{
    private readonly string _replica = options.Value.Replica;
    private readonly long _leaseMs = (long)options.Value.ClaimLease.TotalMilliseconds;

    public async Task<IReadOnlyList<DueGroup>> PendingGroupsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        // A tuple, not the record: SQLite types an aggregate column of an empty result as BLOB, which
        // Dapper's constructor matching refuses.
        return (await connection.QueryAsync<(string Channel, string Target, long DueAt)>(
            """
            SELECT channel AS Channel, target AS Target, MAX(next_attempt_at) AS DueAt
            FROM deliveries WHERE status = 'pending'
            GROUP BY incident_id, channel, target
            """)).Select(g => new DueGroup(g.Channel, g.Target, g.DueAt)).ToList();
    }

    public async Task<long> PendingCountAsync(CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'");
    }

    public TimeSpan ClaimLease => TimeSpan.FromMilliseconds(_leaseMs);

    public async Task<bool> ClaimAsync(string channel, string target, CancellationToken cancellationToken) =>
        await ClaimTargetAsync(channel, target, null, cancellationToken) is not null;

    public async Task<TargetClaim?> ClaimTargetAsync(string channel, string target, long? epoch, CancellationToken cancellationToken)
    {
        var started = time.GetUtcNow();
        if (storage.SingleProcess) return new TargetClaim(0, started);
        var taken = await Claims.TakeAsync(storage, channel, target, _replica, _leaseMs, started.ToUnixTimeMilliseconds(), epoch, cancellationToken);
        if (taken is null || taken.NotBefore > started.ToUnixTimeMilliseconds()) return null;
        // A renewal whose commit took half the lease (a replica cut off from the database: the answer held until the network
        // healed) leaves too little of it to act on: another replica may take the target over while a call is running.
        if (time.GetUtcNow() - started > ClaimLease / 2) return null;
        return new TargetClaim(taken.Epoch, started);
    }

    public Task HoldAsync(string channel, string target, long until, CancellationToken cancellationToken) =>
        Claims.HoldAsync(storage, channel, target, until, cancellationToken);

    public async Task<List<PendingDelivery>> DueAsync(string channel, string target, long now, int maxIncidents, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<PendingDelivery>(
            """
            SELECT id AS Id, incident_id AS IncidentId, channel AS Channel, target AS Target, kind AS Kind, revision AS Revision,
                   subject AS Subject, payload AS Payload, attempts AS Attempts, accepted_at AS AcceptedAt, sending_since AS SendingSince
            FROM deliveries
            WHERE status = 'pending' AND channel = @channel AND target = @target AND incident_id IN (
                SELECT incident_id FROM deliveries WHERE status = 'pending' AND channel = @channel AND target = @target
                GROUP BY incident_id HAVING MAX(next_attempt_at) <= @now LIMIT @maxIncidents)
            ORDER BY id
            """, new { channel, target, now, maxIncidents })).ToList();
    }

    public async Task<DeliveredMessage?> MessageAsync(string incidentId, string channel, string target, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<DeliveredMessage?>(
            "SELECT address AS Address, message_id AS MessageId FROM delivery_messages WHERE incident_id = @incidentId AND channel = @channel AND target = @target",
            new { incidentId, channel, target });
    }

    public async Task MarkSendingAsync(string channel, string target, IReadOnlyCollection<long> deliveryIds, long now, CancellationToken cancellationToken,
        long? epoch = null)
    {
        var started = time.GetUtcNow();
        await using var connection = await storage.OpenAsync(cancellationToken);
        // Its commit may be shared with other bookkeeping and applies (SQLite): it returns once the mark is committed, before the call.
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken, groupCommit: true);
        // The mark and the claim in one transaction: while the mark stands this replica owns the target
        // for a whole lease, so no other replica sends the same message meanwhile. Sent together (one round trip on
        // PostgreSQL); without the claim, the marks are rolled back.
        var statements = new StatementBatch();
        if (!storage.SingleProcess)
            statements.Add(Claims.TakeStatement(channel, target, _replica, _leaseMs, time.GetUtcNow().ToUnixTimeMilliseconds(), epoch));
        foreach (var id in deliveryIds)
            statements.Add("UPDATE deliveries SET sending_since = COALESCE(sending_since, @now) WHERE id = @id AND status = 'pending'",
                P("now", now), P("id", id));
        var claimed = await statements.FlushScalarAsync(write.Connection, write.Transaction, cancellationToken);
        if (!storage.SingleProcess && claimed is null) throw new ClaimLostException(channel, target);
        await write.CommitAsync(cancellationToken);
        // The claim was renewed in that transaction, but a commit that took long (a replica cut off from the database: its
        // commit's answer held until the network heals) leaves little of the lease: another replica may take the target over
        // while the call is still running and send the same message. Not sending now is safe: the mark stands, so whoever
        // sends next reconciles with the vendor first.
        if (!storage.SingleProcess && time.GetUtcNow() - started > TimeSpan.FromMilliseconds(_leaseMs / 2))
            throw new ClaimLostException(channel, target);
    }

    public async Task RecordAsync(DeliveryRecord record, CancellationToken cancellationToken)
    {
        var outcomes = record.Outcomes.ToDictionary(o => o.DeliveryId);
        var retry = record.Outcomes.FirstOrDefault(o => o.Kind == DeliveryOutcomeKind.Retry);
        await using var connection = await storage.OpenAsync(cancellationToken);
        await using var write = await storage.BeginWriteAsync(connection, cancellationToken, groupCommit: true);
        var tx = write.Transaction;
        // Still the owner that made the calls (no other replica held the target in between): then it schedules the retries.
        // Asked of the database only when there is a retry to schedule (the common record, every call sent, needs no look).
        var retries = record.RetryAt is not null
                      && record.Batch.Any(d => !outcomes.TryGetValue(d.Id, out var o) || o.Kind == DeliveryOutcomeKind.Retry);
        var owner = storage.SingleProcess || record.Epoch is not { } epoch || !retries
                    || await Claims.EpochAsync(write.Connection, tx, record.Channel, record.Target) == epoch;
        // The writes go together (one round trip on PostgreSQL).
        var statements = new StatementBatch();
        if (record.NewMessage is { } created)
        {
            statements.Add(
                """
                INSERT INTO delivery_messages (incident_id, channel, target, address, message_id, created_at)
                VALUES (@IncidentId, @Channel, @Target, @Address, @MessageId, @Now)
                ON CONFLICT DO NOTHING
                """,
                P("IncidentId", record.IncidentId), P("Channel", record.Channel), P("Target", record.Target), P("Address", created.Address),
                P("MessageId", created.MessageId), P("Now", record.Now));
        }
        foreach (var delivery in record.Batch)
        {
            if (outcomes.TryGetValue(delivery.Id, out var outcome) && outcome.Kind != DeliveryOutcomeKind.Retry)
            {
                statements.Add(
                    "UPDATE deliveries SET status = @status, attempts = attempts + @counted, last_error = @Error, completed_at = @Now, sending_since = NULL WHERE id = @Id AND status = 'pending'",
                    P("status", Label(outcome.Kind)), P("counted", outcome.Kind == DeliveryOutcomeKind.Merged ? 0 : 1), P("Error", outcome.Error),
                    P("Now", record.Now), P("Id", delivery.Id));
            }
            else if (record.RetryAt is { } at && owner)
            {
                statements.Add(
                    """
                    UPDATE deliveries SET attempts = attempts + 1, last_error = @error, next_attempt_at = @at,
                        sending_since = CASE WHEN @unknown THEN sending_since ELSE NULL END
                    WHERE id = @Id AND status = 'pending'
                    """,
                    P("error", outcome?.Error ?? retry?.Error), P("at", at), P("unknown", outcome?.OutcomeUnknown ?? false), P("Id", delivery.Id));
            }
        }
        await statements.FlushAsync(write.Connection, tx, cancellationToken);
        await write.CommitAsync(cancellationToken);
    }

    public static string Label(DeliveryOutcomeKind kind) => kind switch
    {
        DeliveryOutcomeKind.Sent => "sent",
        DeliveryOutcomeKind.Merged => "merged",
        DeliveryOutcomeKind.Retry => "retry",
        DeliveryOutcomeKind.Skipped => "skipped",
        _ => "failed",
    };

    /// <summary>
    /// Queues a note in the thread of every Slack message of an incident, in the caller's transaction.
    /// The subject makes it unique: the same subject twice is queued once.
    /// </summary>
    internal static Task<int> AddSlackNoteAsync(DbConnection connection, DbTransaction tx, string incidentId, string subject, string text, long now)
    {
        var payload = JsonSerializer.Serialize(new SlackNote(text), DeliveryJsonContext.Default.SlackNote);
        return connection.ExecuteAsync(
            """
            INSERT INTO deliveries (incident_id, channel, target, kind, revision, subject, payload, status, next_attempt_at, accepted_at, created_at)
            SELECT DISTINCT d.incident_id, 'slack', d.target, 'note', i.revision, @subject, @payload, 'pending', @now, @now, @now
            FROM deliveries d JOIN incidents i ON i.id = d.incident_id
            WHERE d.incident_id = @incidentId AND d.channel = 'slack' AND d.kind = 'post'
            ON CONFLICT DO NOTHING
            """, new { incidentId, subject, payload, now }, tx);
    }
}
