using B25.Simulator.Faults;
using Prometheus;

namespace B25.Simulator.Simulation;

/// <summary>strategy-engine: running strategies, the signals they emit, signal-to-order latency.</summary>
internal sealed class StrategyEngineSimulation : ServiceSimulation
{
    private static readonly string[] Strategies = ["scalper_v1", "arbitrage_v2", "market_maker_v1"];
    private static readonly string[] Symbols = ["BTCUSDT", "ETHUSDT"];
    private static readonly string[] Sides = ["buy", "sell"];

    private readonly Counter _signals;
    private readonly Gauge _active;
    private readonly Histogram _signalToOrder;
    private readonly Dictionary<string, double> _carry = [];

    public StrategyEngineSimulation(Random random, TimeProvider time)
        : base("strategy-engine", random, time, 15,
            new HttpRoute("GET", "/api/v1/strategies", 3, 0.003),
            new HttpRoute("POST", "/api/v1/strategies/{id}/toggle", 1, 0.01),
            new HttpRoute("GET", "/health", 1, 0.001))
    {
        _active = Gauge("strategy_engine_active_strategies", "Strategies currently enabled and running.");
        _signals = Counter("strategy_engine_signals_generated_total", "Trading signals generated.", "strategy_id", "symbol", "side");
        _signalToOrder = Histogram("strategy_engine_signal_to_order_latency_seconds", "Latency from signal generation to order submission.", FastPathBuckets, "strategy_id");
        _active.Set(Strategies.Length);
        foreach (var labels in Combinations(Strategies, Symbols, Sides))
        {
            _signals.WithLabels(labels).IncTo(0);
        }

        foreach (var strategy in Strategies)
        {
            _signalToOrder.WithLabels(strategy);
            _carry[strategy] = 0;
        }
    }

    protected override void AdvanceDomain(double seconds, IReadOnlySet<Fault> faults)
    {
        var slow = faults.Contains(Fault.LatencySpike);
        _active.Set(Strategies.Length);
        foreach (var strategy in Strategies)
        {
            var carry = _carry[strategy];
            var n = Random.Events(8, seconds, ref carry);
            _carry[strategy] = carry;
            for (var i = 0; i < n; i++)
            {
                _signals.WithLabels(strategy, Symbols[Random.Next(Symbols.Length)], Sides[Random.Next(Sides.Length)]).Inc();
                _signalToOrder.WithLabels(strategy).Observe(slow ? Random.Between(0.1, 0.8) : Random.LogNormal(0.0008, 0.5));
            }
        }
    }
}
