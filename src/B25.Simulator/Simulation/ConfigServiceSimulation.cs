using B25.Simulator.Faults;
using Prometheus;

namespace B25.Simulator.Simulation;

/// <summary>config-service: mostly reads, occasional config changes and reloads.</summary>
internal sealed class ConfigServiceSimulation : ServiceSimulation
{
    private readonly Counter _reloads;
    private readonly Gauge _entries;
    private double _carry;

    public ConfigServiceSimulation(Random random)
        : base("config-service", random, 8,
            new HttpRoute("GET", "/api/v1/config", 8, 0.002),
            new HttpRoute("PUT", "/api/v1/config", 1, 0.008),
            new HttpRoute("GET", "/health", 1, 0.001))
    {
        _reloads = Counter("config_service_reloads_total", "Configuration reloads pushed to services.");
        _entries = Gauge("config_service_config_entries", "Configuration entries held.");
        _entries.Set(240);
    }

    protected override void AdvanceDomain(double seconds, IReadOnlySet<Fault> faults) =>
        _reloads.Inc(Random.Events(0.01, seconds, ref _carry));
}
