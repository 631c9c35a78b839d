using System.Threading.Channels;
using B25.Alerting.Storage;
using Microsoft.Data.Sqlite;

namespace B25.Alerting.Webhooks;

internal enum JournalResult { Inserted, Duplicate }

internal sealed record JournalEntry(string Id, string GroupId, string Receiver, string GroupKey, long ReceivedAt, byte[] Body);

/// <summary>
/// Durable journal of accepted notifications, with group commit: concurrent requests are written in
/// one transaction and one fsync, and each request is answered only after its row is committed.
/// The same notification twice (same content identity) is stored once.
/// </summary>
internal sealed partial class NotificationJournal : BackgroundService
{
    private const int MaxBatch = 256;
    private readonly Channel<(JournalEntry Entry, TaskCompletionSource<JournalResult> Done)> _queue =
        Channel.CreateUnbounded<(JournalEntry, TaskCompletionSource<JournalResult>)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Database _database;
    private readonly TimeSpan _timeout;
    private readonly ILogger<NotificationJournal> _logger;
    private readonly StorageStatus _storage;

    public NotificationJournal(Database database, Microsoft.Extensions.Options.IOptions<WebhookOptions> options, StorageStatus storage,
        ILogger<NotificationJournal> logger)
    {
        _storage = storage;
        _database = database;
        _timeout = options.Value.JournalTimeout;
        _logger = logger;
    }

    /// <summary>Journals the entry; throws when it cannot within the timeout (the caller answers 503).</summary>
    public async Task<JournalResult> AppendAsync(JournalEntry entry, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource<JournalResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_queue.Writer.TryWrite((entry, done)))
            throw new InvalidOperationException("The journal is shutting down.");
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        // Giving up completes the entry, so the writer skips it if it has not taken it yet.
        await using var registration = cts.Token.Register(() => done.TrySetException(new TimeoutException("Journal write timed out.")));
        return await done.Task;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<(JournalEntry Entry, TaskCompletionSource<JournalResult> Done)>(MaxBatch);
        SqliteConnection? connection = null;
        try
        {
            while (await _queue.Reader.WaitToReadAsync(stoppingToken))
            {
                while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var item))
                {
                    // A request that gave up (and answered 503) must not be journaled after all.
                    if (!item.Done.Task.IsCompleted) batch.Add(item);
                }
                if (batch.Count == 0) continue;
                try
                {
                    if (connection is null)
                    {
                        connection = await _database.OpenAsync(stoppingToken, durable: true);
                        // Wait for a locked database for half the time a request waits for its answer,
                        // so a write never lands after its request was answered 503.
                        using var pragma = connection.CreateCommand();
                        pragma.CommandText = $"PRAGMA busy_timeout = {(int)(_timeout.TotalMilliseconds / 2)};";
                        pragma.ExecuteNonQuery();
                    }
                    await using var write = await _database.BeginWriteAsync(connection, stoppingToken, urgent: true);
                    var results = Write(connection, write.Transaction, batch);
                    for (var i = 0; i < batch.Count; i++) batch[i].Done.TrySetResult(results[i]);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogWriteFailed(ex, batch.Count);
                    _storage.ReportFailure("journal", ex);
                    foreach (var (_, done) in batch) done.TrySetException(ex);
                    if (connection is not null) await connection.DisposeAsync();
                    connection = null;
                }
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            _queue.Writer.TryComplete();
            foreach (var (_, done) in batch) done.TrySetCanceled(CancellationToken.None);
            while (_queue.Reader.TryRead(out var left)) left.Done.TrySetCanceled(CancellationToken.None);
            if (connection is not null) await connection.DisposeAsync();
        }
    }

    private static JournalResult[] Write(SqliteConnection connection, SqliteTransaction tx,
        List<(JournalEntry Entry, TaskCompletionSource<JournalResult> Done)> batch)
    {
        // Taking the write lock may have waited: leave out requests that gave up meanwhile.
        batch.RemoveAll(item => item.Done.Task.IsCompleted);
        var results = new JournalResult[batch.Count];
        using var insert = connection.CreateCommand();
        insert.Transaction = tx;
        insert.CommandText =
            """
            INSERT INTO notifications (id, group_id, receiver, group_key, received_at, body)
            VALUES ($id, $group, $receiver, $key, $at, $body)
            ON CONFLICT (id) DO NOTHING
            """;
        var id = insert.Parameters.Add("$id", SqliteType.Text);
        var group = insert.Parameters.Add("$group", SqliteType.Text);
        var receiver = insert.Parameters.Add("$receiver", SqliteType.Text);
        var key = insert.Parameters.Add("$key", SqliteType.Text);
        var at = insert.Parameters.Add("$at", SqliteType.Integer);
        var body = insert.Parameters.Add("$body", SqliteType.Blob);
        for (var i = 0; i < batch.Count; i++)
        {
            var entry = batch[i].Entry;
            id.Value = entry.Id;
            group.Value = entry.GroupId;
            receiver.Value = entry.Receiver;
            key.Value = entry.GroupKey;
            at.Value = entry.ReceivedAt;
            body.Value = entry.Body;
            results[i] = insert.ExecuteNonQuery() == 1 ? JournalResult.Inserted : JournalResult.Duplicate;
        }
        tx.Commit();
        return results;
    }

    [LoggerMessage(EventId = 1101, Level = LogLevel.Error, Message = "Could not journal {Count} notification(s); they are answered 503 so Alertmanager retries")]
    private partial void LogWriteFailed(Exception ex, int count);
}
