namespace B25.Alerting.Storage.Sqlite;

/// <summary>
/// Turns at SQLite's single writer for the writers of this process, handed out in order, with the
/// journal first: accepting a notification (what Alertmanager waits for) goes before processing,
/// delivery bookkeeping and the rest. After a journal turn the other waiting writers go next, for as long
/// as that journal turn took (at least one of them), so a storm of accepts (each journal turn takes a whole
/// batch and an fsync) cannot starve the pages behind it: with one of them per journal turn, processing got
/// about 50 new incidents/s while 500/s were accepted, since each incident takes three short writes.
/// </summary>
/// <remarks>
/// A waiting writer is handed its turn on a thread of its own here (the hand-on thread), which runs the writer's
/// transaction at once: handed through the thread pool, the next writer waited behind whatever else was queued there
/// (rendering, HTTP, reads), and SQLite's writer sat idle meanwhile, about 27-30 % of its time while a backlog of new
/// incidents drained on 2 busy cores. A writer that got its turn here gives the thread back as soon as it gives up the
/// turn (<see cref="StorageTransaction.DisposeAsync"/>), and goes on in the thread pool. The thread ends when no turn
/// was handed on for a few seconds, and starts again when one is.
/// </remarks>
internal sealed class WriteTurns
{
    private static readonly TimeSpan IdleEnd = TimeSpan.FromSeconds(5);

    private readonly object _gate = new();
    private readonly Queue<TaskCompletionSource> _urgent = new();
    private readonly Queue<TaskCompletionSource> _normal = new();
    private bool _taken;
    private bool _urgentHolds;

    // When the current turn began, and the other writers' share after a journal turn: until when they go first.
    private readonly Func<long> _now;
    private long _heldSince;
    private long _othersUntil;

    /// <param name="now">A clock in <see cref="System.Diagnostics.Stopwatch"/> ticks (tests pass their own).</param>
    public WriteTurns(Func<long>? now = null) => _now = now ?? System.Diagnostics.Stopwatch.GetTimestamp;

    // The turn given up and not yet handed on (at most one: one writer holds the turn), and whether the hand-on thread runs.
    private TaskCompletionSource? _handOn;
    private bool _handing;

    [ThreadStatic] private static bool t_handOnThread;

    /// <summary>True on the hand-on thread: a writer running here should leave it once it gave up its turn.</summary>
    public static bool OnHandOnThread => t_handOnThread;

    /// <summary>Writers waiting for a turn.</summary>
    public int Waiting
    {
        get { lock (_gate) return _urgent.Count + _normal.Count; }
    }

    public Task EnterAsync(bool urgent)
    {
        lock (_gate)
        {
            if (!_taken)
            {
                _taken = true;
                _urgentHolds = urgent;
                _heldSince = _now();
                return Task.CompletedTask;
            }
            // Completed only by the hand-on thread, which then runs the writer (no RunContinuationsAsynchronously).
            var turn = new TaskCompletionSource();
            (urgent ? _urgent : _normal).Enqueue(turn);
            return turn.Task;
        }
    }

    public void Exit()
    {
        lock (_gate)
        {
            var now = _now();
            // A journal turn ends: the others go first for as long as it took. Another writer's turn ends: they go on
            // while that share lasts, then the journal.
            if (_urgentHolds) _othersUntil = now + (now - _heldSince);
            var othersFirst = _urgentHolds || now < _othersUntil;
            var first = othersFirst ? _normal : _urgent;
            var second = othersFirst ? _urgent : _normal;
            _heldSince = now;
            TaskCompletionSource? next;
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
            _handOn = next;
            if (_handing)
            {
                Monitor.Pulse(_gate);
                return;
            }
            _handing = true;
        }
        new Thread(HandOn) { IsBackground = true, Name = "SQLite write turns" }.Start();
    }

    private void HandOn()
    {
        t_handOnThread = true;
        while (true)
        {
            TaskCompletionSource next;
            lock (_gate)
            {
                while (_handOn is null)
                {
                    if (!Monitor.Wait(_gate, IdleEnd) && _handOn is null)
                    {
                        _handing = false;
                        return;
                    }
                }
                next = _handOn;
                _handOn = null;
            }
            next.SetResult(); // the writer runs here until it gives up its turn, or first waits
        }
    }
}
