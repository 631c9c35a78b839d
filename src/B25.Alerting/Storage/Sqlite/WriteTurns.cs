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

    public Task EnterAsync(bool urgent)
    {
        lock (_gate)
        {
            if (!_taken)
            {
                _taken = true;
                _urgentHolds = urgent;
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
            return true;
        }
    }

    public void Exit()
    {
        TaskCompletionSource? next;
        lock (_gate)
        {
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
        }
        next.SetResult();
    }
}
