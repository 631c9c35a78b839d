namespace B25.Simulator.Simulation;

/// <summary>The seven B25 services, in port order (market-data first, on the port base).</summary>
internal sealed class SimulatedServices
{
    public SimulatedServices(Random random)
    {
        All =
        [
            new MarketDataSimulation(random),
            new OrderExecutionSimulation(random),
            new StrategyEngineSimulation(random),
            new AccountMonitorSimulation(random),
            new RiskManagerSimulation(random),
            new ConfigServiceSimulation(random),
            new DashboardServerSimulation(random),
        ];
    }

    public IReadOnlyList<ServiceSimulation> All { get; }

    public ServiceSimulation? Find(string name) =>
        All.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase));
}
