using B25.Simulator.Faults;
using Prometheus;

namespace B25.Simulator.Simulation;

/// <summary>market-data: exchange WebSocket feeds, order books, message flow.</summary>
internal sealed class MarketDataSimulation : ServiceSimulation
{
    private static readonly string[] Exchanges = ["binance", "bybit", "okx"];
    private static readonly string[] Symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"];
    private static readonly double[] LatencyMsBuckets = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100];

    private readonly Gauge _connected;
    private readonly Summary _websocketLatency;
    private readonly Histogram _messageLatency;
    private readonly Counter _messages;
    private readonly Counter _reconnections;
    private readonly Counter _gaps;
    private readonly Gauge _depth;
    private readonly Dictionary<string, Wander> _depthWalk = [];
    private readonly Dictionary<string, double> _carry = [];
    private bool _wasDisconnected;

    public MarketDataSimulation(Random random)
        : base("market-data", random, 40,
            new HttpRoute("GET", "/api/v1/orderbook", 5, 0.004),
            new HttpRoute("GET", "/api/v1/ticker", 3, 0.002),
            new HttpRoute("GET", "/health", 1, 0.001))
    {
        _connected = Gauge("market_data_websocket_connected", "1 when the exchange WebSocket feed is connected.", "exchange");
        _websocketLatency = Summary("market_data_websocket_latency_ms", "Exchange to B25 WebSocket latency in milliseconds.", "exchange");
        _messageLatency = Histogram("market_data_message_latency_ms", "Exchange message latency in milliseconds.", LatencyMsBuckets, "exchange");
        _messages = Counter("market_data_messages_processed_total", "Market data messages processed.", "exchange");
        _reconnections = Counter("market_data_reconnections_total", "WebSocket reconnections.", "exchange");
        _gaps = Counter("market_data_gaps_detected_total", "Sequence gaps detected in exchange feeds.", "exchange");
        _depth = Gauge("market_data_orderbook_depth_levels", "Order book depth in price levels.", "symbol", "side");
        foreach (var exchange in Exchanges)
        {
            _connected.WithLabels(exchange).Set(1);
            _reconnections.WithLabels(exchange).IncTo(0);
            _gaps.WithLabels(exchange).IncTo(0);
            _carry[exchange] = 0;
        }

        foreach (var symbol in Symbols)
        {
            foreach (var side in new[] { "bid", "ask" })
            {
                _depthWalk[$"{symbol}/{side}"] = new Wander(500, 40, 200, 1000);
            }
        }
    }

    public override IReadOnlySet<Fault> DomainFaults { get; } = new HashSet<Fault> { Fault.WebSocketDisconnect };

    protected override void AdvanceDomain(double seconds, IReadOnlySet<Fault> faults)
    {
        var disconnected = faults.Contains(Fault.WebSocketDisconnect);
        var slow = faults.Contains(Fault.LatencySpike);
        foreach (var exchange in Exchanges)
        {
            // The fault drops the feeds the alert watches (binance, bybit); okx stays up.
            var down = disconnected && exchange is "binance" or "bybit";
            _connected.WithLabels(exchange).Set(down ? 0 : 1);
            if (_wasDisconnected && !disconnected && exchange is "binance" or "bybit")
            {
                _reconnections.WithLabels(exchange).Inc();
            }

            if (down)
            {
                continue;
            }

            var carry = _carry[exchange];
            var n = Random.Events(500, seconds, ref carry);
            _carry[exchange] = carry;
            _messages.WithLabels(exchange).Inc(n);
            var samples = Math.Min(n, 50);
            for (var i = 0; i < samples; i++)
            {
                var ms = slow ? Random.Between(30, 90) : Random.LogNormal(1.2, 0.6);
                _websocketLatency.WithLabels(exchange).Observe(ms);
                _messageLatency.WithLabels(exchange).Observe(ms);
            }

            if (Random.NextDouble() < 0.0005 * seconds)
            {
                _gaps.WithLabels(exchange).Inc();
            }
        }

        _wasDisconnected = disconnected;
        foreach (var (key, walk) in _depthWalk)
        {
            var parts = key.Split('/');
            _depth.WithLabels(parts[0], parts[1]).Set(Math.Round(walk.Next(Random, seconds)));
        }
    }
}
