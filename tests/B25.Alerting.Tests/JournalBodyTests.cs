using B25.Alerting.Tests.Support;
using B25.Alerting.Webhooks;

namespace B25.Alerting.Tests;

/// <summary>
/// What the journal stores is the body as it was accepted, byte for byte: on SQLite it is written after its row (incremental
/// blob I/O), so which row gets which body is the journal's own doing.
/// </summary>
public sealed class JournalBodyTests
{
    [Fact]
    public async Task Journaled_bodies_read_back_byte_for_byte_and_a_repeated_id_keeps_the_first_body()
    {
        await using var stores = await TestStores.CreateAsync();
        var large = new byte[3_000_017];
        new Random(11).NextBytes(large);
        var first = "{\"first\":1}"u8.ToArray();
        var second = "{\"second, longer\":2}"u8.ToArray();
        var other = "{\"other\":3}"u8.ToArray();

        var results = await stores.Journal.AppendAsync(
            [Entry("n-large", "g1", large), Entry("n-twice", "g2", first), Entry("n-twice", "g2", second), Entry("n-other", "g1", other)],
            _ => true, TimeSpan.FromSeconds(5), CancellationToken.None);
        var again = await stores.Journal.AppendAsync([Entry("n-twice", "g2", other)], _ => true, TimeSpan.FromSeconds(5), CancellationToken.None);

        Assert.Equal([JournalResult.Inserted, JournalResult.Inserted, JournalResult.Duplicate, JournalResult.Inserted], results);
        Assert.Equal([JournalResult.Duplicate], again);
        Assert.Equal(large, await BodyAsync(stores, "n-large"));
        Assert.Equal(first, await BodyAsync(stores, "n-twice"));
        Assert.Equal(other, await BodyAsync(stores, "n-other"));
    }

    private static JournalEntry Entry(string id, string groupId, byte[] body) => new(id, groupId, "r", "k", 1, body);

    private static async Task<byte[]?> BodyAsync(TestStores stores, string id)
    {
        var found = await stores.Journal.FindWithNextAsync(id, CancellationToken.None);
        Assert.NotNull(found);
        var head = found.Value.Head;
        await using var connection = await stores.Provider.OpenAsync();
        return await stores.Provider.ReadNotificationBodyAsync(connection, null, head.Seq, async (stream, ct) =>
        {
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy, ct);
            return copy.ToArray();
        }, CancellationToken.None);
    }
}
