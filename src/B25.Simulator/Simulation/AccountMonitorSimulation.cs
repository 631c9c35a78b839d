using B25.Simulator.Faults;
using Prometheus;

namespace B25.Simulator.Simulation;

/// <summary>account-monitor: balance, P&amp;L, positions against limits, trade statistics.</summary>
internal sealed class AccountMonitorSimulation : ServiceSimulation
{
    private static readonly string[] Symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"];
    private static readonly Dictionary<string, double> Limits = new()
    {
        ["BTCUSDT"] = 2, ["ETHUSDT"] = 30, ["SOLUSDT"] = 500,
    };

    /// <summary>Healthy drawdown stays well under the 5% alert; the fault pushes it well over.</summary>
    internal const double DrawdownFaultPct = 8.5;

    private readonly Gauge _balance;
    private readonly Gauge _realized;
    private readonly Gauge _unrealized;
    private readonly Counter _winning;
    private readonly Counter _trades;
    private readonly Counter _makerOrders;
    private readonly Counter _orders;
    private readonly Gauge _positionSize;
    private readonly Gauge _positionLimit;
    private readonly Gauge _fees;
    private readonly Gauge _sharpe;
    private readonly Gauge _drawdown;
    private readonly Wander _unrealizedWalk = new(250, 120, -1500, 2500);
    private readonly Wander _drawdownWalk = new(1.2, 0.15, 0.2, 3.0);
    private readonly Wander _sharpeWalk = new(1.8, 0.05, 1.0, 2.6);
    private readonly Dictionary<string, Wander> _positions = [];
    private double _realizedPnl = 1800;
    private double _makerFees = 120;
    private double _takerFees = 60;
    private double _carry;

    public AccountMonitorSimulation(Random random)
        : base("account-monitor", random, 20,
            new HttpRoute("GET", "/api/v1/account", 4, 0.004),
            new HttpRoute("GET", "/api/v1/positions", 3, 0.003),
            new HttpRoute("GET", "/health", 1, 0.001))
    {
        _balance = Gauge("account_monitor_balance_usd", "Account balance in USD.");
        _realized = Gauge("account_monitor_realized_pnl_usd", "Realized P&L since start of day, USD.");
        _unrealized = Gauge("account_monitor_unrealized_pnl_usd", "Unrealized P&L of open positions, USD.");
        _winning = Counter("account_monitor_winning_trades_total", "Trades closed in profit.");
        _trades = Counter("account_monitor_total_trades_total", "Trades closed.");
        _makerOrders = Counter("account_monitor_maker_orders_total", "Maker orders placed.");
        _orders = Counter("account_monitor_total_orders_total", "Orders placed.");
        _positionSize = Gauge("account_monitor_position_size", "Open position size by symbol, base units (negative = short).", "symbol");
        _positionLimit = Gauge("account_monitor_position_limit", "Position size limit by symbol, base units.", "symbol");
        _fees = Gauge("account_monitor_fees_paid_usd", "Fees paid since start of day, USD, by maker/taker.", "type");
        _sharpe = Gauge("account_monitor_sharpe_ratio", "Rolling Sharpe ratio.");
        _drawdown = Gauge("account_monitor_max_drawdown_pct", "Max peak-to-trough drawdown today, percent.");

        // Start with a history so the ratio alerts (win rate, maker ratio) have sane values at once.
        _winning.IncTo(580);
        _trades.IncTo(1000);
        _makerOrders.IncTo(820);
        _orders.IncTo(1000);
        foreach (var symbol in Symbols)
        {
            _positionLimit.WithLabels(symbol).Set(Limits[symbol]);
            _positions[symbol] = new Wander(Limits[symbol] * 0.3, Limits[symbol] * 0.03, -Limits[symbol] * 0.6, Limits[symbol] * 0.6);
        }
    }

    public override IReadOnlySet<Fault> DomainFaults { get; } = new HashSet<Fault> { Fault.Drawdown };

    protected override void AdvanceDomain(double seconds, IReadOnlySet<Fault> faults)
    {
        var drawdown = faults.Contains(Fault.Drawdown);
        var n = Random.Events(2, seconds, ref _carry);
        for (var i = 0; i < n; i++)
        {
            var win = Random.NextDouble() < (drawdown ? 0.3 : 0.58);
            _trades.Inc();
            if (win)
            {
                _winning.Inc();
            }

            _realizedPnl += win ? Random.Between(5, 40) : -Random.Between(5, 30);
            _orders.Inc();
            if (Random.NextDouble() < 0.82)
            {
                _makerOrders.Inc();
                _makerFees += Random.Between(0.01, 0.1);
            }
            else
            {
                _takerFees += Random.Between(0.05, 0.3);
            }
        }

        var unrealized = _unrealizedWalk.Next(Random, seconds, target: drawdown ? -4200 : null, pullOverride: drawdown ? 5 : null);
        var dd = drawdown ? DrawdownFaultPct : _drawdownWalk.Next(Random, seconds);
        _realized.Set(Math.Round(_realizedPnl, 2));
        _unrealized.Set(Math.Round(unrealized, 2));
        _balance.Set(Math.Round(50_000 + _realizedPnl + unrealized, 2));
        _drawdown.Set(Math.Round(dd, 3));
        _sharpe.Set(Math.Round(_sharpeWalk.Next(Random, seconds, target: drawdown ? 0.4 : null), 3));
        _fees.WithLabels("maker").Set(Math.Round(_makerFees, 4));
        _fees.WithLabels("taker").Set(Math.Round(_takerFees, 4));
        foreach (var symbol in Symbols)
        {
            _positionSize.WithLabels(symbol).Set(Math.Round(_positions[symbol].Next(Random, seconds), 4));
        }
    }
}
