using MassTransit;
using MassTransit.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace B25.Alerting.Tests.Support;

/// <summary>
/// Two real MassTransit buses in the states a replica's bus can be in (a class fixture): one that works (the test harness's
/// in-memory bus, started), and one that never started, as a replica's bus stayed after its broker died during the bus's start.
/// </summary>
public sealed class BusStates : IAsyncLifetime
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMassTransitTestHarness().BuildServiceProvider(true);

    public IBusControl Working => _services.GetRequiredService<IBusControl>();
    public IBusControl NeverStarted { get; } = Bus.Factory.CreateUsingInMemory(_ => { });

    public async Task InitializeAsync() => await _services.GetRequiredService<ITestHarness>().Start();

    public async Task DisposeAsync() => await _services.DisposeAsync();
}
