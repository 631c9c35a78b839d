using System.Diagnostics;
using System.Globalization;
using Npgsql;
using RabbitMQ.Client;

namespace B25.Alerting.Bench;

/// <summary>
/// Where accepted notifications wait, sampled once a second during a phase: journaled and not yet applied (PostgreSQL,
/// <c>processed_at IS NULL</c>), and ready in the service's RabbitMQ queue (a passive declare). Journaled-but-unapplied
/// minus ready minus what the consumers hold (prefetch) is what has not reached the broker yet: the services'
/// in-process publish queues. With RabbitMQ it also times, every 200 ms, one persistent publish to a quorum queue of its
/// own with a publisher confirm, as the service's publisher makes them (it awaits each before the next).
/// </summary>
internal sealed class BacklogSampler : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly Task _confirms;
    private readonly List<(double At, long? Unapplied, long? Ready)> _samples = [];
    private readonly List<double> _confirmMs = [];

    private BacklogSampler(string? connectionString, string? rabbitUri, string? queue)
    {
        _loop = Task.Run(() => LoopAsync(connectionString, rabbitUri, queue));
        _confirms = rabbitUri is null ? Task.CompletedTask : Task.Run(() => ConfirmsAsync(rabbitUri, queue + "-confirm-probe"));
    }

    private async Task ConfirmsAsync(string rabbitUri, string queue)
    {
        try
        {
            await using var connection = await new ConnectionFactory { Uri = new Uri(rabbitUri) }.CreateConnectionAsync();
            await using var channel = await connection.CreateChannelAsync(new CreateChannelOptions(
                publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
            await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false,
                arguments: new Dictionary<string, object?> { ["x-queue-type"] = "quorum", ["x-max-length"] = 100 });
            var body = new byte[300];
            var properties = new BasicProperties { Persistent = true };
            while (!_stop.IsCancellationRequested)
            {
                var t0 = Stopwatch.GetTimestamp();
                await channel.BasicPublishAsync("", queue, mandatory: false, properties, body);
                lock (_confirmMs) _confirmMs.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                try { await Task.Delay(200, _stop.Token); }
                catch (OperationCanceledException) { }
            }
            await channel.QueueDeleteAsync(queue);
        }
        catch (Exception ex) when (ex is RabbitMQ.Client.Exceptions.RabbitMQClientException or RabbitMQ.Client.Exceptions.OperationInterruptedException
                                       or IOException or InvalidOperationException)
        {
            Console.Error.WriteLine($"  publish-confirm probe stopped: {ex.Message}");
        }
    }

    public static BacklogSampler Start(string? connectionString, string? rabbitUri, string? queue) => new(connectionString, rabbitUri, queue);

    private async Task LoopAsync(string? connectionString, string? rabbitUri, string? queue)
    {
        var t0 = Stopwatch.GetTimestamp();
        NpgsqlConnection? pg = null;
        IConnection? rabbit = null;
        IChannel? channel = null;
        try
        {
            if (connectionString is not null)
            {
                pg = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
                await pg.OpenAsync();
            }
            if (rabbitUri is not null && queue is not null)
            {
                rabbit = await new ConnectionFactory { Uri = new Uri(rabbitUri) }.CreateConnectionAsync();
                channel = await rabbit.CreateChannelAsync();
            }
            while (!_stop.IsCancellationRequested)
            {
                long? unapplied = null, ready = null;
                if (pg is not null)
                {
                    await using var command = new NpgsqlCommand("SELECT count(*) FROM notifications WHERE processed_at IS NULL", pg);
                    unapplied = (long)(await command.ExecuteScalarAsync())!;
                }
                if (channel is not null)
                {
                    try { ready = (await channel.QueueDeclarePassiveAsync(queue!)).MessageCount; }
                    catch (RabbitMQ.Client.Exceptions.OperationInterruptedException)
                    {
                        // No such queue (yet): the passive declare closed the channel.
                        channel.Dispose();
                        channel = await rabbit!.CreateChannelAsync();
                    }
                }
                lock (_samples) _samples.Add((Stopwatch.GetElapsedTime(t0).TotalSeconds, unapplied, ready));
                try { await Task.Delay(1000, _stop.Token); }
                catch (OperationCanceledException) { }
            }
        }
        catch (Exception ex) when (ex is NpgsqlException or RabbitMQ.Client.Exceptions.BrokerUnreachableException or InvalidOperationException)
        {
            Console.Error.WriteLine($"  backlog sampler stopped: {ex.Message}");
        }
        finally
        {
            if (channel is not null) await channel.DisposeAsync();
            if (rabbit is not null) await rabbit.DisposeAsync();
            if (pg is not null) await pg.DisposeAsync();
        }
    }

    /// <summary>Max of each, and every <paramref name="every"/>-th sample as "seconds:unapplied/ready".</summary>
    public string Describe(int every = 3)
    {
        lock (_samples)
        {
            if (_samples.Count == 0) return "no samples";
            string N(long? v) => v?.ToString(CultureInfo.InvariantCulture) ?? "-";
            var maxUnapplied = _samples.Max(s => s.Unapplied ?? -1);
            var maxReady = _samples.Max(s => s.Ready ?? -1);
            var series = string.Join(" ", _samples.Where((_, i) => i % every == 0).Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.At:F0}s:{N(s.Unapplied)}/{N(s.Ready)}")));
            List<double> confirms;
            lock (_confirmMs) confirms = [.. _confirmMs];
            var probe = confirms.Count == 0 ? "" : $"; one persistent publish to a quorum queue with its confirm, every 200 ms: {Stats.Summary(confirms)}";
            return $"journaled but not applied max {(maxUnapplied < 0 ? "-" : maxUnapplied)}, ready in the RabbitMQ queue max {(maxReady < 0 ? "-" : maxReady)} " +
                   $"(every {every}rd 1-s sample, seconds since start: unapplied/ready: {series}){probe}";
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        await _confirms;
        _stop.Dispose();
    }
}
