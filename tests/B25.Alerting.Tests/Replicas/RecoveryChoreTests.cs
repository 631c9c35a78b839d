using B25.Alerting.Pipeline;
using B25.Alerting.Tests.Support;
using MassTransit;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.Replicas;

/// <summary>
/// The recovery sweep runs in one replica for the cluster, the one holding its chore's claim: never in one whose bus cannot
/// publish, which would hold the claim and republish into nothing.
/// </summary>
public sealed class RecoveryChoreTests(BusStates buses) : IClassFixture<BusStates>
{
    private readonly FakeTimeProvider _time = new(T0);
    private readonly IBusControl _working = buses.Working;
    private readonly IBusControl _neverStarted = buses.NeverStarted;

    private NotificationRecovery Recovery(TestStores replica, IBusControl bus) =>
        new(replica.Journal, replica.Provider, null!, Options.Create(replica.Options), _time, NullLogger<NotificationRecovery>.Instance, bus);

    [Fact]
    public async Task A_replica_whose_bus_never_started_leaves_the_sweep_to_one_whose_bus_works()
    {
        await using var a = await TestStores.CreatePostgresAsync(_time, replica: "a");
        await using var b = a.Replica("b", _time);
        Assert.Equal(BusHealthStatus.Unhealthy, _neverStarted.CheckHealth().Status);

        // a comes first but cannot publish: it does not take the chore, so b can.
        Assert.False(await Recovery(a, _neverStarted).TakeChoreAsync(CancellationToken.None));
        Assert.True(await Recovery(b, _working).TakeChoreAsync(CancellationToken.None));
        _time.Advance(NotificationRecovery.ChoreLease + TimeSpan.FromSeconds(1));
        Assert.False(await Recovery(a, _neverStarted).TakeChoreAsync(CancellationToken.None)); // even with b's claim expired

        // With a working bus, the claim keeps the chore in one replica (what the check above is measured against).
        await using var c = a.Replica("c", _time);
        Assert.True(await Recovery(b, _working).TakeChoreAsync(CancellationToken.None));
        Assert.False(await Recovery(c, _working).TakeChoreAsync(CancellationToken.None));
    }
}
