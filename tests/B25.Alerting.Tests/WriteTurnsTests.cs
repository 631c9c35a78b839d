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
    public async Task The_time_each_holder_kept_the_turn_is_added_up_and_reaches_the_writer_metric()
    {
        var turns = new WriteTurns();
        var metricBefore = B25.Alerting.Observability.AlertingMetrics.SqliteWriterHeld.Value;
        var hold = TimeSpan.FromMilliseconds(150);

        await turns.EnterAsync(urgent: false);
        var next = turns.EnterAsync(urgent: true); // waits: its waiting is not counted as holding
        await Task.Delay(hold);
        turns.Exit();
        await next;
        await Task.Delay(hold);
        turns.Exit();
        Assert.True(turns.TryEnter());
        turns.Exit();

        Assert.Equal(3, turns.Turns);
        Assert.InRange(turns.BusyTime, 2 * hold - TimeSpan.FromMilliseconds(20), 2 * hold + TimeSpan.FromSeconds(30)); // the two holds (a timer may fire a tick early); a busy machine may add
        // Process-wide: other tests' writers add to it too, so only at least this instance's time.
        Assert.True(B25.Alerting.Observability.AlertingMetrics.SqliteWriterHeld.Value - metricBefore >= turns.BusyTime.TotalSeconds - 1e-9);
    }
}
