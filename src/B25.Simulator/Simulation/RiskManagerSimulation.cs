using B25.Simulator.Faults;
using Prometheus;

namespace B25.Simulator.Simulation;

/// <summary>risk-manager: limit utilisation, violations and emergency stops.</summary>
internal sealed class RiskManagerSimulation : ServiceSimulation
{
    internal static readonly string[] LimitTypes = ["position", "leverage", "exposure", "drawdown", "daily_loss"];
    private static readonly string[] StopReasons = ["risk_limit", "drawdown", "manual"];

    private readonly Gauge _utilization;
    private readonly Counter _violations;
    private readonly Counter _emergencyStops;
    private readonly Dictionary<string, Wander> _walks = [];
    private bool _wasViolating;
    private double _carry;

    public RiskManagerSimulation(Random random, TimeProvider time)
        : base("risk-manager", random, time, 25,
            new HttpRoute("POST", "/api/v1/risk/check", 8, 0.001),
            new HttpRoute("GET", "/api/v1/limits", 1, 0.002),
            new HttpRoute("GET", "/health", 1, 0.001))
    {
        _utilization = Gauge("risk_manager_limit_utilization_ratio", "Use of each risk limit; 1 = at the limit.", "limit_type");
        _violations = Counter("risk_manager_limit_violations_total", "Risk limit violations detected.", "limit_type");
        _emergencyStops = Counter("risk_manager_emergency_stops_total", "Emergency stops executed (trading halted, orders cancelled).", "reason");
        foreach (var limit in LimitTypes)
        {
            _walks[limit] = new Wander(0.35, 0.04, 0.05, 0.7);
            _utilization.WithLabels(limit).Set(0.35);
            _violations.WithLabels(limit).IncTo(0);
        }

        foreach (var reason in StopReasons)
        {
            _emergencyStops.WithLabels(reason).IncTo(0);
        }
    }

    public override IReadOnlySet<Fault> DomainFaults { get; } = new HashSet<Fault> { Fault.RiskViolation };

    protected override void AdvanceDomain(double seconds, IReadOnlySet<Fault> faults)
    {
        var violating = faults.Contains(Fault.RiskViolation);
        foreach (var limit in LimitTypes)
        {
            var breached = violating && limit == "position";
            _utilization.WithLabels(limit).Set(Math.Round(breached ? 1.15 : _walks[limit].Next(Random, seconds), 4));
        }

        if (violating)
        {
            // A breached limit is re-checked and counted about once a second while it lasts;
            // the first one halts trading.
            _violations.WithLabels("position").Inc(Math.Max(_wasViolating ? 0 : 1, Random.Events(1, seconds, ref _carry)));
            if (!_wasViolating)
            {
                _emergencyStops.WithLabels("risk_limit").Inc();
            }
        }

        _wasViolating = violating;
    }
}
