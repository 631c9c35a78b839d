using System.Threading.Channels;
using B25.Alerting.Storage;

namespace B25.Alerting.Webhooks;

internal enum JournalResult { Inserted, Duplicate }

internal sealed record JournalEntry(string Id, string GroupId, string Receiver, string GroupKey, long ReceivedAt, byte[] Body);

/// <summary>
/// Durable journal of accepted notifications, with group commit: concurrent requests are written in
/// one transaction and one fsync, and each request is answered only after its row is committed.
/// The same notification twice (same content identity) is stored once. On a store one process owns
/// (SQLite: one writer connection) one writer takes the batches; on a shared store several do, so a
/// batch's round trips and commit overlap the next one's instead of queueing behind them (a group's
/// order still holds: its lock is held to the commit).
/// </summary>
internal sealed partial class NotificationJournal : BackgroundService
{
    private const int MaxBatch = 256;
    private readonly Channel<(JournalEntry Entry, TaskCompletionSource<JournalResult> Done)> _queue =
        Channel.CreateUnbounded<(JournalEntry, TaskCompletionSource<JournalResult>)>(new UnboundedChannelOptions());
    private readonly int _writers;
    private readonly IJournalStore _journal;
    private readonly TimeSpan _timeout;
    private readonly ILogger<NotificationJournal> _logger;
    private readonly StorageStatus _storage;

    /// <param name="writers">Batches written at once (1 where the store has one writer).</param>
    public NotificationJournal(IJournalStore journal, Microsoft.Extensions.Options.IOptions<WebhookOptions> options,
        StorageStatus storage, ILogger<NotificationJournal> logger, int writers = 1)
    {
        _writers = Math.Max(1, writers);
        _storage = storage;
        _journal = journal;
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
        try
        {
            await Task.WhenAll(Enumerable.Range(0, _writers).Select(_ => Task.Run(() => WriteAsync(stoppingToken), CancellationToken.None)));
        }
        finally
        {
            _queue.Writer.TryComplete();
            while (_queue.Reader.TryRead(out var left)) left.Done.TrySetCanceled(CancellationToken.None);
        }
    }

    private async Task WriteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<(JournalEntry Entry, TaskCompletionSource<JournalResult> Done)>(MaxBatch);
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
                    // Wait for a lock for half the time a request waits for its answer, so a write never
                    // lands after its request was answered 503.
                    var results = await _journal.AppendAsync(batch.Select(b => b.Entry).ToList(), i => !batch[i].Done.Task.IsCompleted,
                        _timeout / 2, stoppingToken);
                    for (var i = 0; i < batch.Count; i++)
                        if (results[i] is { } result) batch[i].Done.TrySetResult(result);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogWriteFailed(ex, batch.Count);
                    _storage.ReportFailure("journal", ex);
                    foreach (var (_, done) in batch) done.TrySetException(ex);
                }
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            foreach (var (_, done) in batch) done.TrySetCanceled(CancellationToken.None);
        }
    }

    [LoggerMessage(EventId = 1101, Level = LogLevel.Error, Message = "Could not journal {Count} notification(s); they are answered 503 so Alertmanager retries")]
    private partial void LogWriteFailed(Exception ex, int count);
}
