using B25.Alerting.Pipeline;
using B25.Alerting.Storage;
using Microsoft.Extensions.Configuration;

namespace B25.Alerting.Tests.Pipeline;

/// <summary>Bus:Partitions: set, it is used as given; unset, 32 on SQLite and 16 on PostgreSQL (a connection per apply in progress).</summary>
public sealed class PartitionsTests
{
    private static BusOptions Bind(params (string Key, string Value)[] settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value))).Build()
            .GetSection(BusOptions.Section).Get<BusOptions>() ?? new BusOptions();

    [Fact]
    public void Unset_the_storage_decides()
    {
        var options = Bind(("Bus:Transport", "RabbitMq"));
        Assert.Null(options.Partitions);
        Assert.Equal(32, options.PartitionsFor(StorageProviderKind.Sqlite));
        Assert.Equal(16, options.PartitionsFor(StorageProviderKind.Postgres));
    }

    [Fact]
    public void Set_it_is_used_on_either_storage()
    {
        var options = Bind(("Bus:Partitions", "8"));
        Assert.Equal(8, options.PartitionsFor(StorageProviderKind.Sqlite));
        Assert.Equal(8, options.PartitionsFor(StorageProviderKind.Postgres));
    }

    [Fact]
    public void The_shipped_settings_leave_it_to_the_storage()
    {
        var shipped = new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: false).Build();
        Assert.Null(shipped.GetSection(BusOptions.Section).Get<BusOptions>()!.Partitions);
    }
}
