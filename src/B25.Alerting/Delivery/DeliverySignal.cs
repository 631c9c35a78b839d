using System.Collections.Concurrent;
using System.Threading.Channels;

namespace B25.Alerting.Delivery;

/// <summary>
/// Wakes the delivery dispatcher when new deliveries were written: for named targets (their workers
/// start at once, with no look at the whole outbox) or for any target (the dispatcher looks at every one).
/// Its waits run on <paramref name="time"/>, the service's clock: on a test's fake clock, a retry due in ten minutes
/// is due when the test moves the clock ten minutes on, not ten minutes later.
/// </summary>
internal sealed class DeliverySignal(TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Channel<bool> _channel = Channel.CreateBounded<bool>(
        new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly ConcurrentDictionary<(string Channel, string Target), byte> _targets = new();
    private int _everyTarget;

    /// <summary>New deliveries somewhere: the dispatcher looks at every target.</summary>
    public void Notify()
    {
        Volatile.Write(ref _everyTarget, 1);
        _channel.Writer.TryWrite(true);
    }

    /// <summary>New deliveries for these targets; null when unknown.</summary>
    public void Notify(IReadOnlyCollection<(string Channel, string Target)>? targets)
    {
        if (targets is null)
        {
            Notify();
            return;
        }
        if (targets.Count == 0) return;
        foreach (var target in targets) _targets.TryAdd(target, 0);
        _channel.Writer.TryWrite(true);
    }

    /// <summary>What was signalled since the last call: whether every target should be looked at, and the named targets.</summary>
    public (bool EveryTarget, List<(string Channel, string Target)> Targets) Take()
    {
        var every = Interlocked.Exchange(ref _everyTarget, 0) == 1;
        var targets = new List<(string Channel, string Target)>();
        foreach (var key in _targets.Keys)
            if (_targets.TryRemove(key, out _)) targets.Add(key);
        return (every, targets);
    }

    public async Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (timeout <= TimeSpan.Zero) return;
        using var due = new CancellationTokenSource(timeout, _time);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, due.Token);
        try
        {
            await _channel.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
        }
    }
}
