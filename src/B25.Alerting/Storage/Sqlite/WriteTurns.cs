using System.Diagnostics;
using B25.Alerting.Observability;

namespace B25.Alerting.Storage.Sqlite;

/// <summary>
/// Turns at SQLite's single writer for the writers of this process, handed out in order, with the
/// journal first: accepting a notification (what Alertmanager waits for) goes before processing,
/// delivery bookkeeping and the rest. After a journal turn a waiting processor goes next, so a storm
/// of accepts (each journal turn takes a whole batch) cannot starve the pages behind it.
/// </summary>
internal sealed class WriteTurns
{
    private readonly object _gate = new();
    private readonly Queue<TaskCompletionSource> _urgent = new();
    private readonly Queue<TaskCompletionSource> _normal = new();
    private bool _taken;
    private bool _urgentHolds;
    private long _heldSince; // Stopwatch timestamp at which the current holder got the turn

    /// <summary>The turn was taken; from now its holding time counts.</summary>
    private void Taken() => _heldSince = Stopwatch.GetTimestamp();

    /// <summary>The holder gives the turn up: its holding time goes to the writer's utilisation metric.</summary>
    private void Given()
    {
        var held = Stopwatch.GetElapsedTime(_heldSince);
        BusyTime += held;
        Turns++;
        // Every holder counts, the start's warm-up and the background workers included: this is how busy the writer was, not
        // what happened to incidents.
        AlertingMetrics.SqliteWriterHeld.Inc(held.TotalSeconds);
        AlertingMetrics.SqliteWriterTurns.Inc();
    }

    /// <summary>How long the turn was held in all, by turns given back (written under the gate: read it when nobody writes).</summary>
    public TimeSpan BusyTime { get; private set; }

    /// <summary>Turns given back.</summary>
    public long Turns { get; private set; }

    public Task EnterAsync(bool urgent)
    {
        lock (_gate)
        {
            if (!_taken)
            {
                _taken = true;
                _urgentHolds = urgent;
                Taken();
                return Task.CompletedTask;
            }
            var turn = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            (urgent ? _urgent : _normal).Enqueue(turn);
            return turn.Task;
        }
    }

    /// <summary>Takes the turn only if nobody holds it; true when taken (give it back with <see cref="Exit"/>).</summary>
    public bool TryEnter()
    {
        lock (_gate)
        {
            if (_taken) return false;
            _taken = true;
            _urgentHolds = false;
            Taken();
            return true;
        }
    }

    public void Exit()
    {
        TaskCompletionSource? next;
        lock (_gate)
        {
            Given();
            var first = _urgentHolds ? _normal : _urgent;
            var second = _urgentHolds ? _urgent : _normal;
            if (first.TryDequeue(out next))
            {
                _urgentHolds = first == _urgent;
            }
            else if (second.TryDequeue(out next))
            {
                _urgentHolds = second == _urgent;
            }
            else
            {
                _taken = false;
                return;
            }
            Taken(); // the next holder's time starts now, not when its continuation runs
        }
        next.SetResult();
    }
}
