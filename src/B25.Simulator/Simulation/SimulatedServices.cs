namespace B25.Simulator.Simulation;

/// <summary>The seven B25 services, in port order (market-data first, on the port base).</summary>
internal sealed class SimulatedServices
{
    public SimulatedServices(Random random, TimeProvider time)
    {
        All =
        [
            new MarketDataSimulation(random, time),
            new OrderExecutionSimulation(random, time),
            new StrategyEngineSimulation(random, time),
            new AccountMonitorSimulation(random, time),
            new RiskManagerSimulation(random, time),
            new ConfigServiceSimulation(random, time),
            new DashboardServerSimulation(random, time),
        ];
    }

    public IReadOnlyList<ServiceSimulation> All { get; }

    public ServiceSimulation? Find(string name) =>
        All.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase));
}
