using B25.Simulator.Faults;
using Prometheus;

namespace B25.Simulator.Simulation;

/// <summary>strategy-engine: signals, active strategies, decision latency.</summary>
internal sealed class StrategyEngineSimulation : ServiceSimulation
{
    private static readonly string[] Strategies = ["scalper_v1", "arbitrage_v2", "market_maker_v1"];

    private readonly Counter _signals;
    private readonly Gauge _active;
    private readonly Summary _signalToOrder;
    private readonly Gauge _positionSize;
    private readonly Dictionary<string, double> _carry = [];
    private readonly Dictionary<string, Wander> _positions = [];

    public StrategyEngineSimulation(Random random)
        : base("strategy-engine", random, 15,
            new HttpRoute("GET", "/api/v1/strategies", 3, 0.003),
            new HttpRoute("POST", "/api/v1/strategies", 1, 0.01),
            new HttpRoute("GET", "/health", 1, 0.001))
    {
        _signals = Counter("strategy_engine_signals_generated_total", "Trading signals generated.", "strategy_id");
        _active = Gauge("strategy_engine_active_strategies", "Strategies currently running.");
        _signalToOrder = Summary("strategy_engine_signal_to_order_latency_ms", "Signal to order submission latency, ms.");
        _positionSize = Gauge("strategy_engine_position_size", "Position size held by each strategy, in base units.", "strategy_id");
        foreach (var strategy in Strategies)
        {
            _signals.WithLabels(strategy).IncTo(0);
            _carry[strategy] = 0;
            _positions[strategy] = new Wander(0.5, 0.1, -2, 2);
        }
    }

    protected override void AdvanceDomain(double seconds, IReadOnlySet<Fault> faults)
    {
        _active.Set(Strategies.Length);
        var slow = faults.Contains(Fault.LatencySpike);
        foreach (var strategy in Strategies)
        {
            var carry = _carry[strategy];
            var n = Random.Events(8, seconds, ref carry);
            _carry[strategy] = carry;
            _signals.WithLabels(strategy).Inc(n);
            for (var i = 0; i < n; i++)
            {
                _signalToOrder.Observe(slow ? Random.Between(40, 120) : Random.LogNormal(0.8, 0.5));
            }

            _positionSize.WithLabels(strategy).Set(Math.Round(_positions[strategy].Next(Random, seconds), 4));
        }
    }
}
