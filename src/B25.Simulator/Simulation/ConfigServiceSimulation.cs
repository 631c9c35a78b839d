using B25.Simulator.Faults;
using Prometheus;

namespace B25.Simulator.Simulation;

/// <summary>
/// config-service: configuration reads. Changes stay at 0: every change deployed raises the
/// ConfigurationChanged info alert, and a healthy simulator must keep the rules silent.
/// </summary>
internal sealed class ConfigServiceSimulation : ServiceSimulation
{
    private static readonly string[] Sections = ["strategy", "risk", "exchange"];

    public ConfigServiceSimulation(Random random, TimeProvider time)
        : base("config-service", random, time, 8,
            new HttpRoute("GET", "/api/v1/config/{section}", 8, 0.002),
            new HttpRoute("PUT", "/api/v1/config/{section}", 1, 0.008),
            new HttpRoute("GET", "/health", 1, 0.001))
    {
        var changes = Counter("config_service_config_changes_total", "Configuration changes deployed, by section.", "section");
        foreach (var section in Sections)
        {
            changes.WithLabels(section).IncTo(0);
        }
    }

    protected override void AdvanceDomain(double seconds, IReadOnlySet<Fault> faults)
    {
    }
}
