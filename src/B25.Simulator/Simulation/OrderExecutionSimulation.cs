using B25.Simulator.Faults;
using Prometheus;

namespace B25.Simulator.Simulation;

/// <summary>order-execution: orders to the exchanges, their status transitions, fills and latencies.</summary>
internal sealed class OrderExecutionSimulation : ServiceSimulation
{
    private static readonly string[] Exchanges = ["binance", "bybit"];
    private static readonly string[] Symbols = ["BTCUSDT", "ETHUSDT"];
    private static readonly string[] Sides = ["buy", "sell"];
    private static readonly string[] OrderTypes = ["limit", "market"];
    private static readonly string[] Statuses = ["new", "partially_filled", "filled", "canceled", "rejected", "expired"];
    private static readonly Dictionary<string, double> Prices = new() { ["BTCUSDT"] = 97_000, ["ETHUSDT"] = 3_400 };

    private readonly Counter _orders;
    private readonly Counter _submitted;
    private readonly Counter _filled;
    private readonly Counter _volume;
    private readonly Counter _rateLimited;
    private readonly Gauge _queueDepth;
    private readonly Gauge _circuitBreaker;
    private readonly Histogram _fillLatency;
    private readonly Histogram _submissionLatency;
    private readonly Wander _queue = new(6, 2, 0, 30);
    private readonly Cadence _rejections = new(0.005);
    private double _carry;
    private double _rateLimitCarry;

    public OrderExecutionSimulation(Random random, TimeProvider time)
        : base("order-execution", random, time, 60,
            new HttpRoute("POST", "/api/v1/orders", 6, 0.003),
            new HttpRoute("DELETE", "/api/v1/orders/{id}", 2, 0.002),
            new HttpRoute("GET", "/api/v1/orders/{id}", 2, 0.002),
            new HttpRoute("GET", "/health", 1, 0.001))
    {
        _orders = Counter("order_execution_orders_total", "Order status transitions: each order counted once for every status it reaches.", "exchange", "symbol", "side", "order_type", "status");
        _submitted = Counter("order_execution_submitted_orders_total", "Orders submitted to the exchange.", "exchange", "symbol", "order_type");
        _filled = Counter("order_execution_filled_orders_total", "Orders completely filled.", "exchange", "symbol", "order_type");
        _volume = Counter("order_execution_volume_usd_total", "Filled notional volume in USD.", "exchange", "symbol", "side");
        _rateLimited = Counter("order_execution_rate_limited_total", "Orders delayed or refused by the local exchange rate limiter.", "exchange");
        _queueDepth = Gauge("order_execution_queue_depth", "Orders waiting in the execution queue.");
        _circuitBreaker = Gauge("order_execution_circuit_breaker_state", "Exchange circuit breaker: 0 closed, 1 open, 2 half-open.", "exchange");
        _fillLatency = Histogram("order_execution_latency_seconds", "Order-to-fill latency: submission to first fill.", FastPathBuckets, "exchange", "order_type");
        _submissionLatency = Histogram("order_execution_submission_latency_seconds", "Submission latency: request to exchange acknowledgement.", FastPathBuckets, "exchange", "order_type");

        foreach (var labels in Combinations(Exchanges, Symbols, Sides, OrderTypes, Statuses))
        {
            _orders.WithLabels(labels).IncTo(0);
        }

        foreach (var labels in Combinations(Exchanges, Symbols, OrderTypes))
        {
            _submitted.WithLabels(labels).IncTo(0);
            _filled.WithLabels(labels).IncTo(0);
        }

        foreach (var labels in Combinations(Exchanges, Symbols, Sides))
        {
            _volume.WithLabels(labels).IncTo(0);
        }

        foreach (var exchange in Exchanges)
        {
            _rateLimited.WithLabels(exchange).IncTo(0);
            _circuitBreaker.WithLabels(exchange).Set(0);
            foreach (var type in OrderTypes)
            {
                _fillLatency.WithLabels(exchange, type);
                _submissionLatency.WithLabels(exchange, type);
            }
        }
    }

    protected override void AdvanceDomain(double seconds, IReadOnlySet<Fault> faults)
    {
        var slow = faults.Contains(Fault.LatencySpike);
        var n = Random.Events(20, seconds, ref _carry);
        for (var i = 0; i < n; i++)
        {
            var exchange = Exchanges[Random.Next(Exchanges.Length)];
            var symbol = Symbols[Random.Next(Symbols.Length)];
            var side = Sides[Random.Next(Sides.Length)];
            var type = Random.NextDouble() < 0.85 ? "limit" : "market";
            _submitted.WithLabels(exchange, symbol, type).Inc();
            _submissionLatency.WithLabels(exchange, type).Observe(slow ? Random.Between(0.2, 0.9) : Random.LogNormal(0.0015, 0.5));

            if (_rejections.Next())
            {
                _orders.WithLabels(exchange, symbol, side, type, "rejected").Inc();
                continue;
            }

            _orders.WithLabels(exchange, symbol, side, type, "new").Inc();
            var roll = Random.NextDouble();
            if (roll < 0.015)
            {
                _orders.WithLabels(exchange, symbol, side, type, "expired").Inc();
            }
            else if (roll < 0.25 && type == "limit")
            {
                _orders.WithLabels(exchange, symbol, side, type, "canceled").Inc();
            }
            else
            {
                if (Random.NextDouble() < 0.2)
                {
                    _orders.WithLabels(exchange, symbol, side, type, "partially_filled").Inc();
                }

                _orders.WithLabels(exchange, symbol, side, type, "filled").Inc();
                _filled.WithLabels(exchange, symbol, type).Inc();
                _volume.WithLabels(exchange, symbol, side).Inc(Math.Round(Prices[symbol] * Random.Between(0.001, 0.05), 2));
                _fillLatency.WithLabels(exchange, type).Observe(slow ? Random.Between(0.3, 1.0) : Random.LogNormal(0.004, 0.6));
            }
        }

        var limited = Random.Events(0.01, seconds, ref _rateLimitCarry);
        if (limited > 0)
        {
            _rateLimited.WithLabels(Exchanges[Random.Next(Exchanges.Length)]).Inc(limited);
        }

        _queueDepth.Set(Math.Round(_queue.Next(Random, seconds)));
    }
}
