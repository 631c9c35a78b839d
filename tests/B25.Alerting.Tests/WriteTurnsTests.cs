using B25.Alerting.Storage;
using B25.Alerting.Storage.Sqlite;

namespace B25.Alerting.Tests;

public sealed class WriteTurnsTests
{
    [Fact]
    public async Task Journal_goes_before_other_waiting_writers_and_each_waits_its_turn()
    {
        var turns = new WriteTurns();
        await turns.EnterAsync(urgent: false); // a processor holds the writer
        var order = new List<string>();
        var processor = turns.EnterAsync(urgent: false).ContinueWith(_ => { lock (order) order.Add("processor"); turns.Exit(); });
        var journal = turns.EnterAsync(urgent: true).ContinueWith(_ => { lock (order) order.Add("journal"); turns.Exit(); });

        Assert.False(processor.IsCompleted);
        Assert.False(journal.IsCompleted);
        turns.Exit();
        await Task.WhenAll(processor, journal);

        Assert.Equal(["journal", "processor"], order);
        Assert.True(turns.EnterAsync(urgent: false).IsCompleted, "free again once everyone left");
    }

    [Fact]
    public async Task After_a_journal_turn_a_waiting_processor_goes_next()
    {
        var turns = new WriteTurns();
        await turns.EnterAsync(urgent: true); // the journal holds the writer
        var order = new List<string>();
        var journal = turns.EnterAsync(urgent: true).ContinueWith(_ => { lock (order) order.Add("journal"); turns.Exit(); });
        var processor = turns.EnterAsync(urgent: false).ContinueWith(_ => { lock (order) order.Add("processor"); turns.Exit(); });

        turns.Exit();
        await Task.WhenAll(processor, journal);

        Assert.Equal(["processor", "journal"], order);
    }

    [Fact]
    public async Task Waiting_writers_are_handed_their_turns_in_order_on_the_hand_on_thread_without_the_thread_pool()
    {
        var turns = new WriteTurns();
        await turns.EnterAsync(urgent: false);
        var order = new List<int>();
        var threads = new HashSet<string?>();
        // 2,000 waiting writers, each giving its turn up at once: handed on one after another on one thread, with a flat stack.
        // Started outside xunit's synchronization context, as the service's writers run.
        var writers = await Task.Run(() => Enumerable.Range(0, 2_000).Select(i => Writer(i)).ToList());
        async Task Writer(int i)
        {
            await turns.EnterAsync(urgent: false);
            order.Add(i); // only the turn's holder runs here
            threads.Add(Thread.CurrentThread.IsThreadPoolThread ? "a thread pool thread" : Thread.CurrentThread.Name);
            turns.Exit();
        }

        Assert.Empty(order);
        turns.Exit();
        await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(Enumerable.Range(0, 2_000), order);
        Assert.Equal(["SQLite write turns"], threads);
    }

    [Fact]
    public async Task A_writer_handed_its_turn_leaves_the_hand_on_thread_when_its_transaction_ends()
    {
        var turns = new WriteTurns();
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection("Data Source=:memory:");
        await connection.OpenAsync();
        await turns.EnterAsync(urgent: false);
        var next = Task.Run(async () =>
        {
            await turns.EnterAsync(urgent: false);
            var onHandOn = WriteTurns.OnHandOnThread;
            await using (new StorageTransaction(connection, connection.BeginTransaction(), turns.Exit)) { }
            return (onHandOn, after: WriteTurns.OnHandOnThread, where: $"{Thread.CurrentThread.Name} pool={Thread.CurrentThread.IsThreadPoolThread} id={Environment.CurrentManagedThreadId}");
        });
        while (turns.Waiting == 0) await Task.Delay(10);
        turns.Exit();
        var (onHandOn, after, where) = await next.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True(onHandOn, "the waiting writer ran on the hand-on thread");
        Assert.False(after, "once its turn was given up it went on elsewhere, not on " + where);
    }

    [Fact]
    public async Task After_a_journal_turn_the_other_writers_go_for_as_long_as_it_took_then_the_journal()
    {
        long clock = 0;
        var turns = new WriteTurns(() => clock);
        var order = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var holder = new SemaphoreSlim(0);
        // Each writer records itself when it gets its turn and waits for the test to end it.
        Task Writer(string name, bool urgent) => Task.Run(async () =>
        {
            await turns.EnterAsync(urgent);
            order.Enqueue(name);
            holder.Release();
        });
        async Task EndTurnAfter(long ticks)
        {
            clock += ticks;
            turns.Exit();
            await holder.WaitAsync(TimeSpan.FromSeconds(30));
        }

        await turns.EnterAsync(urgent: true); // a journal turn, 10 ticks long
        var writers = new List<Task> { Writer("p1", false) };
        while (turns.Waiting < 1) await Task.Delay(5);
        writers.Add(Writer("p2", false));
        while (turns.Waiting < 2) await Task.Delay(5);
        writers.Add(Writer("p3", false));
        while (turns.Waiting < 3) await Task.Delay(5);
        writers.Add(Writer("j2", true));
        while (turns.Waiting < 4) await Task.Delay(5);

        await EndTurnAfter(10); // the journal took 10: the others go first until 20
        await EndTurnAfter(4);  // p1 took 4 (14 < 20): p2 next
        await EndTurnAfter(7);  // p2 took 7 (21 >= 20): the journal next, before p3
        await EndTurnAfter(1);  // j2 took 1: p3 next
        turns.Exit();
        await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(["p1", "p2", "j2", "p3"], order.ToArray());
    }
}
