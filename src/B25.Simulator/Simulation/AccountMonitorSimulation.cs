using B25.Simulator.Faults;
using Prometheus;

namespace B25.Simulator.Simulation;

/// <summary>account-monitor: equity, P&amp;L, positions against limits, drawdown, trade statistics.</summary>
internal sealed class AccountMonitorSimulation : ServiceSimulation
{
    private static readonly string[] Exchanges = ["binance", "bybit"];
    private static readonly string[] Symbols = ["BTCUSDT", "ETHUSDT"];
    private static readonly string[] Liquidity = ["maker", "taker"];
    private static readonly Dictionary<string, double> Limits = new() { ["BTCUSDT"] = 2, ["ETHUSDT"] = 30 };
    private static readonly Dictionary<string, double> Prices = new() { ["BTCUSDT"] = 97_000, ["ETHUSDT"] = 3_400 };

    /// <summary>Current drawdown while the fault is on: well over the 5% of HighDrawdown.</summary>
    internal const double DrawdownFaultPct = 8.5;

    private const double StartingEquityPerExchange = 50_000;

    private readonly Gauge _balance;
    private readonly Gauge _realized;
    private readonly Gauge _unrealized;
    private readonly Gauge _positionSize;
    private readonly Gauge _exchangePositionSize;
    private readonly Gauge _positionLimit;
    private readonly Gauge _entryPrice;
    private readonly Gauge _marginRatio;
    private readonly Gauge _drawdown;
    private readonly Gauge _maxDrawdown;
    private readonly Gauge _sharpe;
    private readonly Counter _trades;
    private readonly Counter _winningTrades;
    private readonly Counter _orders;
    private readonly Counter _makerOrders;
    private readonly Counter _fees;
    private readonly Dictionary<(string Exchange, string Symbol), Wander> _positions = [];
    private readonly Dictionary<(string Exchange, string Symbol), Wander> _unrealizedWalk = [];
    private readonly Dictionary<string, Wander> _margin = [];
    private readonly Dictionary<string, double> _realizedPnl = [];
    private readonly Wander _drawdownWalk = new(1.2, 0.15, 0.2, 3.0);
    private readonly Wander _sharpeWalk = new(1.8, 0.05, 1.0, 2.6);
    private readonly Cadence _wins = new(0.58);
    private readonly Cadence _makers = new(0.82);
    private double _maxDrawdownPct;
    private double _carry;

    public AccountMonitorSimulation(Random random, TimeProvider time)
        : base("account-monitor", random, time, 20,
            new HttpRoute("GET", "/api/v1/account", 4, 0.004),
            new HttpRoute("GET", "/api/v1/positions", 3, 0.003),
            new HttpRoute("GET", "/health", 1, 0.001))
    {
        _balance = Gauge("account_monitor_balance_usd", "Account equity (wallet balance) in USD per exchange account.", "exchange");
        _realized = Gauge("account_monitor_realized_pnl_usd", "Cumulative realized P&L in USD.", "exchange");
        _unrealized = Gauge("account_monitor_unrealized_pnl_usd", "Unrealized P&L of the open position in USD.", "exchange", "symbol");
        _positionSize = Gauge("account_monitor_position_size", "Signed position size in base units from local fills (negative = short).", "exchange", "symbol");
        _exchangePositionSize = Gauge("account_monitor_exchange_position_size", "Signed position size in base units as reported by the exchange.", "exchange", "symbol");
        _positionLimit = Gauge("account_monitor_position_limit", "Maximum absolute position size allowed for the symbol, in base units.", "exchange", "symbol");
        _entryPrice = Gauge("account_monitor_position_entry_price", "Average entry price of the open position.", "exchange", "symbol");
        _marginRatio = Gauge("account_monitor_margin_ratio", "Maintenance margin divided by margin balance (1 = liquidation).", "exchange");
        _drawdown = Gauge("account_monitor_drawdown_pct", "Current drawdown from the equity peak, in percent.");
        _maxDrawdown = Gauge("account_monitor_max_drawdown_pct", "Largest peak-to-trough drawdown of the period, in percent.");
        _sharpe = Gauge("account_monitor_sharpe_ratio", "Rolling Sharpe ratio of returns.");
        _trades = Counter("account_monitor_trades_total", "Closed trades (round trips).", "exchange", "symbol");
        _winningTrades = Counter("account_monitor_winning_trades_total", "Closed trades with positive realized P&L.", "exchange", "symbol");
        _orders = Counter("account_monitor_orders_total", "Filled orders seen on the account.", "exchange");
        _makerOrders = Counter("account_monitor_maker_orders_total", "Filled orders that provided liquidity (maker).", "exchange");
        _fees = Counter("account_monitor_fees_paid_usd_total", "Trading fees paid in USD, liquidity maker or taker.", "exchange", "liquidity");

        foreach (var exchange in Exchanges)
        {
            _realizedPnl[exchange] = 900;
            _margin[exchange] = new Wander(0.15, 0.01, 0.05, 0.35);
            _orders.WithLabels(exchange).IncTo(0);
            _makerOrders.WithLabels(exchange).IncTo(0);
            foreach (var liquidity in Liquidity)
            {
                _fees.WithLabels(exchange, liquidity).IncTo(0);
            }

            foreach (var symbol in Symbols)
            {
                var limit = Limits[symbol];
                _positionLimit.WithLabels(exchange, symbol).Set(limit);
                _positions[(exchange, symbol)] = new Wander(limit * 0.3, limit * 0.03, -limit * 0.6, limit * 0.6);
                _unrealizedWalk[(exchange, symbol)] = new Wander(100, 60, -800, 1200);
                _entryPrice.WithLabels(exchange, symbol).Set(Prices[symbol]);
                _trades.WithLabels(exchange, symbol).IncTo(0);
                _winningTrades.WithLabels(exchange, symbol).IncTo(0);
            }
        }

        Publish(seconds: 0.001, drawdownFault: false);
    }

    public override IReadOnlySet<Fault> DomainFaults { get; } = new HashSet<Fault> { Fault.Drawdown };

    protected override void AdvanceDomain(double seconds, IReadOnlySet<Fault> faults)
    {
        var n = Random.Events(2, seconds, ref _carry);
        for (var i = 0; i < n; i++)
        {
            var exchange = Exchanges[Random.Next(Exchanges.Length)];
            var symbol = Symbols[Random.Next(Symbols.Length)];
            var win = _wins.Next();
            _trades.WithLabels(exchange, symbol).Inc();
            if (win)
            {
                _winningTrades.WithLabels(exchange, symbol).Inc();
            }

            _realizedPnl[exchange] += win ? Random.Between(5, 40) : -Random.Between(5, 30);

            // A round trip is two fills; most of them rest on the book (maker).
            for (var fill = 0; fill < 2; fill++)
            {
                _orders.WithLabels(exchange).Inc();
                var maker = _makers.Next();
                if (maker)
                {
                    _makerOrders.WithLabels(exchange).Inc();
                }

                _fees.WithLabels(exchange, maker ? "maker" : "taker").Inc(Math.Round(Random.Between(0.05, maker ? 0.2 : 0.6), 4));
            }
        }

        Publish(seconds, faults.Contains(Fault.Drawdown));
    }

    private void Publish(double seconds, bool drawdownFault)
    {
        foreach (var exchange in Exchanges)
        {
            var unrealizedTotal = 0.0;
            foreach (var symbol in Symbols)
            {
                var size = Math.Round(_positions[(exchange, symbol)].Next(Random, seconds), 4);
                _positionSize.WithLabels(exchange, symbol).Set(size);
                _exchangePositionSize.WithLabels(exchange, symbol).Set(size);
                var unrealized = _unrealizedWalk[(exchange, symbol)].Next(Random, seconds,
                    target: drawdownFault ? -2_400 : null, pullOverride: drawdownFault ? 5 : null);
                unrealizedTotal += unrealized;
                _unrealized.WithLabels(exchange, symbol).Set(Math.Round(unrealized, 2));
            }

            _realized.WithLabels(exchange).Set(Math.Round(_realizedPnl[exchange], 2));
            _balance.WithLabels(exchange).Set(Math.Round(StartingEquityPerExchange + _realizedPnl[exchange] + unrealizedTotal, 2));
            _marginRatio.WithLabels(exchange).Set(Math.Round(_margin[exchange].Next(Random, seconds, target: drawdownFault ? 0.45 : null), 4));
        }

        var drawdown = drawdownFault ? DrawdownFaultPct : _drawdownWalk.Next(Random, seconds);
        _maxDrawdownPct = Math.Max(_maxDrawdownPct, drawdown);
        _drawdown.Set(Math.Round(drawdown, 3));
        _maxDrawdown.Set(Math.Round(_maxDrawdownPct, 3));
        _sharpe.Set(Math.Round(_sharpeWalk.Next(Random, seconds, target: drawdownFault ? 0.4 : null), 3));
    }
}
