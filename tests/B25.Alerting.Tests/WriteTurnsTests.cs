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
}
