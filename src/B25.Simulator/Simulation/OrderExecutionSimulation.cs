using B25.Simulator.Faults;
using Prometheus;

namespace B25.Simulator.Simulation;

/// <summary>order-execution: order flow to the exchanges, fills, latencies, circuit breaker.</summary>
internal sealed class OrderExecutionSimulation : ServiceSimulation
{
    private static readonly double[] LatencyMsBuckets = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250];

    private readonly Counter _orders;
    private readonly Counter _submitted;
    private readonly Counter _filled;
    private readonly Counter _rateLimited;
    private readonly Counter _volume;
    private readonly Histogram _submissionLatency;
    private readonly Histogram _fillLatency;
    private readonly Gauge _circuitBreaker;
    private readonly Gauge _queueDepth;
    private readonly Wander _queue = new(8, 3, 0, 40);
    private double _carry;

    public OrderExecutionSimulation(Random random)
        : base("order-execution", random, 60,
            new HttpRoute("POST", "/api/v1/orders", 6, 0.003),
            new HttpRoute("DELETE", "/api/v1/orders", 2, 0.002),
            new HttpRoute("GET", "/api/v1/orders", 2, 0.002),
            new HttpRoute("GET", "/health", 1, 0.001))
    {
        _orders = Counter("order_execution_orders_total", "Orders by final status and type.", "status", "type");
        _submitted = Counter("order_execution_submitted_orders_total", "Orders submitted to exchanges.");
        _filled = Counter("order_execution_filled_orders_total", "Orders filled.");
        _rateLimited = Counter("order_execution_rate_limited_total", "Orders throttled by the rate limiter.");
        _volume = Counter("order_execution_volume_usd_total", "Traded volume in USD.");
        _submissionLatency = Histogram("order_execution_submission_latency_ms", "Order submission to exchange acknowledgement, ms.", LatencyMsBuckets);
        _fillLatency = Histogram("order_execution_latency_ms", "Order to fill latency, ms.", LatencyMsBuckets);
        _circuitBreaker = Gauge("order_execution_circuit_breaker_state", "Circuit breaker: 0 closed, 1 open, 2 half-open.");
        _queueDepth = Gauge("order_execution_queue_depth", "Orders waiting in the execution queue.");
        foreach (var status in new[] { "filled", "canceled", "rejected" })
        {
            foreach (var type in new[] { "maker", "taker" })
            {
                _orders.WithLabels(status, type).IncTo(0);
            }
        }
    }

    protected override void AdvanceDomain(double seconds, IReadOnlySet<Fault> faults)
    {
        var slow = faults.Contains(Fault.LatencySpike);
        var n = Random.Events(20, seconds, ref _carry);
        for (var i = 0; i < n; i++)
        {
            _submitted.Inc();
            var type = Random.NextDouble() < 0.8 ? "maker" : "taker";
            var roll = Random.NextDouble();
            var status = roll < 0.01 ? "rejected" : roll < 0.2 ? "canceled" : "filled";
            _orders.WithLabels(status, type).Inc();
            if (status == "filled")
            {
                _filled.Inc();
                _volume.Inc(Math.Round(Random.Between(200, 5000), 2));
            }

            _submissionLatency.Observe(slow ? Random.Between(50, 200) : Random.LogNormal(1.5, 0.5));
            _fillLatency.Observe(slow ? Random.Between(80, 240) : Random.LogNormal(4, 0.6));
        }

        if (Random.NextDouble() < 0.01 * seconds)
        {
            _rateLimited.Inc();
        }

        _circuitBreaker.Set(faults.Contains(Fault.ErrorSpike) ? 1 : 0);
        _queueDepth.Set(Math.Round(_queue.Next(Random, seconds, target: slow ? 60 : null)));
    }
}
