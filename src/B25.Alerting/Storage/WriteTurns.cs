namespace B25.Alerting.Storage;

/// <summary>
/// Turns at SQLite's single writer for the writers of this process, handed out in order, with the
/// journal first: accepting a notification (what Alertmanager waits for) goes before processing,
/// delivery bookkeeping and the rest, which catch up from the journal.
/// </summary>
internal sealed class WriteTurns
{
    private readonly object _gate = new();
    private readonly Queue<TaskCompletionSource> _urgent = new();
    private readonly Queue<TaskCompletionSource> _normal = new();
    private bool _taken;

    public Task EnterAsync(bool urgent)
    {
        lock (_gate)
        {
            if (!_taken)
            {
                _taken = true;
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
            if (!_urgent.TryDequeue(out next) && !_normal.TryDequeue(out next))
            {
                _taken = false;
                return;
            }
        }
        next.SetResult();
    }
}
