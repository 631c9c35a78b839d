using B25.Simulator.Faults;
using Prometheus;

namespace B25.Simulator.Simulation;

/// <summary>config-service: mostly reads, now and then a configuration change.</summary>
internal sealed class ConfigServiceSimulation : ServiceSimulation
{
    private static readonly string[] Sections = ["strategy", "risk", "exchange"];

    private readonly Counter _changes;
    private double _carry;

    public ConfigServiceSimulation(Random random, TimeProvider time)
        : base("config-service", random, time, 8,
            new HttpRoute("GET", "/api/v1/config/{section}", 8, 0.002),
            new HttpRoute("PUT", "/api/v1/config/{section}", 1, 0.008),
            new HttpRoute("GET", "/health", 1, 0.001))
    {
        _changes = Counter("config_service_config_changes_total", "Configuration changes deployed, by section.", "section");
        foreach (var section in Sections)
        {
            _changes.WithLabels(section).IncTo(0);
        }
    }

    protected override void AdvanceDomain(double seconds, IReadOnlySet<Fault> faults)
    {
        var changes = Random.Events(0.005, seconds, ref _carry);
        if (changes > 0)
        {
            _changes.WithLabels(Sections[Random.Next(Sections.Length)]).Inc(changes);
        }
    }
}
