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
