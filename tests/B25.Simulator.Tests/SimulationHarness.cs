using B25.Simulator.Faults;
using B25.Simulator.Simulation;
using Microsoft.Extensions.Time.Testing;

namespace B25.Simulator.Tests;

/// <summary>Drives the simulated services directly, on a fake clock, and scrapes them in memory.</summary>
internal sealed class SimulationHarness
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));

    public SimulationHarness(int seed = 25) => Services = new SimulatedServices(new Random(seed), _time);

    public SimulatedServices Services { get; }

    public FaultBoard Faults { get; } = new();

    public ServiceSimulation this[string service] => Services.Find(service) ?? throw new ArgumentException(service);

    /// <summary>Runs the world for <paramref name="duration"/> in ticks of <paramref name="step"/> (default 1 s).</summary>
    public void Run(TimeSpan duration, TimeSpan? step = null)
    {
        var tick = step ?? TimeSpan.FromSeconds(1);
        for (var elapsed = TimeSpan.Zero; elapsed < duration; elapsed += tick)
        {
            _time.Advance(tick);
            foreach (var service in Services.All)
            {
                service.Advance(tick.TotalSeconds, Faults.ActiveFor(service.Name));
            }
        }
    }

    public async Task<Exposition> ScrapeAsync(string service)
    {
        using var buffer = new MemoryStream();
        await this[service].WriteExpositionAsync(buffer, CancellationToken.None);
        return Exposition.Parse(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }
}
