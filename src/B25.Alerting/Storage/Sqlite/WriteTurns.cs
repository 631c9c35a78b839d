using System.Diagnostics;
using B25.Alerting.Observability;

namespace B25.Alerting.Storage.Sqlite;

/// <summary>
/// Turns at SQLite's single writer for the writers of this process, handed out in order, with the
/// journal first: accepting a notification (what Alertmanager waits for) goes before processing,
/// delivery bookkeeping and the rest. After a journal turn a waiting processor goes next, so a storm
/// of accepts (each journal turn takes a whole batch) cannot starve the pages behind it. A holder in a group commit may hand
/// the turn straight to the next waiter that can join the group (<see cref="TryHandOver"/>) while no journal write waits.
/// </summary>
internal sealed class WriteTurns
{
    private readonly object _gate = new();
    private readonly Queue<TaskCompletionSource> _urgent = new();
    private readonly Queue<(TaskCompletionSource Turn, object? Group)> _normal = new();
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

    /// <param name="group">
    /// What a group commit this writer can join is keyed by (equal keys share one), or null when it writes alone. Only a
    /// writer that is not urgent joins one.
    /// </param>
    public Task EnterAsync(bool urgent, object? group = null)
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
            if (urgent) _urgent.Enqueue(turn);
            else _normal.Enqueue((turn, group));
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
            // After a journal turn a processor goes first, otherwise the journal.
            if (_urgentHolds && _normal.TryDequeue(out var waiting))
            {
                next = waiting.Turn;
                _urgentHolds = false;
            }
            else if (_urgent.TryDequeue(out next))
            {
                _urgentHolds = true;
            }
            else if (_normal.TryDequeue(out waiting))
            {
                next = waiting.Turn;
                _urgentHolds = false;
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

    /// <summary>
    /// Hands the turn to the first waiter when it can join the holder's group commit (<paramref name="group"/>) and no journal
    /// write waits: true when handed over (the holder no longer has the turn and must not <see cref="Exit"/>); false when the
    /// holder keeps it.
    /// </summary>
    public bool TryHandOver(object group)
    {
        TaskCompletionSource next;
        lock (_gate)
        {
            if (_urgent.Count > 0 || !_normal.TryPeek(out var first) || !group.Equals(first.Group)) return false;
            _normal.Dequeue();
            Given();
            _urgentHolds = false;
            next = first.Turn;
            Taken();
        }
        next.SetResult();
        return true;
    }
}
