using B25.Simulator.Faults;
using Prometheus;

namespace B25.Simulator.Simulation;

/// <summary>market-data: exchange WebSocket feeds, local order books, message flow.</summary>
internal sealed class MarketDataSimulation : ServiceSimulation
{
    internal static readonly string[] Exchanges = ["binance", "bybit", "okx"];

    /// <summary>The feeds the websocket-disconnect fault drops (the ones WebSocketDisconnected watches).</summary>
    internal static readonly string[] DisconnectedByFault = ["binance", "bybit"];

    private static readonly string[] Symbols = ["BTCUSDT", "ETHUSDT"];
    private static readonly string[] Channels = ["trades", "orderbook", "ticker"];
    private static readonly string[] Sides = ["bid", "ask"];

    private readonly Gauge _connected;
    private readonly Histogram _websocketLatency;
    private readonly Histogram _messageLatency;
    private readonly Counter _messages;
    private readonly Counter _reconnections;
    private readonly Counter _gaps;
    private readonly Gauge _depth;
    private readonly Gauge _lastUpdate;
    private readonly Dictionary<(string Exchange, string Symbol, string Side), Wander> _depthWalk = [];
    private readonly Dictionary<(string Exchange, string Channel), double> _carry = [];
    private readonly HashSet<string> _down = [];

    public MarketDataSimulation(Random random, TimeProvider time)
        : base("market-data", random, time, 40,
            new HttpRoute("GET", "/api/v1/orderbook/{symbol}", 5, 0.004),
            new HttpRoute("GET", "/api/v1/ticker/{symbol}", 3, 0.002),
            new HttpRoute("GET", "/health", 1, 0.001))
    {
        _connected = Gauge("market_data_websocket_connected", "1 while the exchange market-data WebSocket is connected, else 0.", "exchange");
        _websocketLatency = Histogram("market_data_websocket_latency_seconds", "WebSocket round-trip (ping/pong) latency to the exchange.", FastPathBuckets, "exchange");
        _messageLatency = Histogram("market_data_message_latency_seconds", "Exchange event timestamp to local receipt latency per market-data message.", FastPathBuckets, "exchange");
        _messages = Counter("market_data_messages_processed_total", "Market-data messages processed, by channel (trades, orderbook, ticker).", "exchange", "channel");
        _depth = Gauge("market_data_orderbook_depth_levels", "Price levels held in the local order book, side bid or ask.", "exchange", "symbol", "side");
        _lastUpdate = Gauge("market_data_orderbook_last_update_timestamp_seconds", "Unix time of the last order-book update applied for the symbol.", "exchange", "symbol");
        _reconnections = Counter("market_data_reconnections_total", "WebSocket reconnections to the exchange.", "exchange");
        _gaps = Counter("market_data_gaps_detected_total", "Sequence-number or timestamp gaps detected in the feed.", "exchange", "symbol");

        foreach (var exchange in Exchanges)
        {
            _connected.WithLabels(exchange).Set(1);
            _reconnections.WithLabels(exchange).IncTo(0);
            _websocketLatency.WithLabels(exchange);
            _messageLatency.WithLabels(exchange);
            foreach (var channel in Channels)
            {
                _messages.WithLabels(exchange, channel).IncTo(0);
                _carry[(exchange, channel)] = 0;
            }

            foreach (var symbol in Symbols)
            {
                _gaps.WithLabels(exchange, symbol).IncTo(0);
                _lastUpdate.WithLabels(exchange, symbol).Set(UnixNow);
                foreach (var side in Sides)
                {
                    _depthWalk[(exchange, symbol, side)] = new Wander(500, 40, 200, 1000);
                }
            }
        }
    }

    public override IReadOnlySet<Fault> DomainFaults { get; } = new HashSet<Fault> { Fault.WebSocketDisconnect };

    protected override void AdvanceDomain(double seconds, IReadOnlySet<Fault> faults)
    {
        var disconnect = faults.Contains(Fault.WebSocketDisconnect);
        var slow = faults.Contains(Fault.LatencySpike);
        var now = UnixNow;
        foreach (var exchange in Exchanges)
        {
            var down = disconnect && DisconnectedByFault.Contains(exchange);
            if (!down && _down.Remove(exchange))
            {
                _reconnections.WithLabels(exchange).Inc();
            }
            else if (down)
            {
                _down.Add(exchange);
            }

            _connected.WithLabels(exchange).Set(down ? 0 : 1);
            if (down)
            {
                // No feed, no order-book updates: the books go stale and their depth stays put.
                continue;
            }

            foreach (var channel in Channels)
            {
                var carry = _carry[(exchange, channel)];
                var n = Random.Events(channel == "orderbook" ? 400 : 100, seconds, ref carry);
                _carry[(exchange, channel)] = carry;
                _messages.WithLabels(exchange, channel).Inc(n);

                // Sample the latency of a few messages rather than every one: same distribution, less work.
                for (var i = 0; i < Math.Min(n, 10); i++)
                {
                    _messageLatency.WithLabels(exchange).Observe(slow ? Random.Between(0.05, 0.4) : Random.LogNormal(0.0012, 0.6));
                }
            }

            if (Random.NextDouble() < seconds)
            {
                _websocketLatency.WithLabels(exchange).Observe(slow ? Random.Between(0.2, 0.9) : Random.LogNormal(0.004, 0.4));
            }

            foreach (var symbol in Symbols)
            {
                _lastUpdate.WithLabels(exchange, symbol).Set(now);
                if (Random.NextDouble() < 0.0002 * seconds)
                {
                    _gaps.WithLabels(exchange, symbol).Inc();
                }

                foreach (var side in Sides)
                {
                    _depth.WithLabels(exchange, symbol, side).Set(Math.Round(_depthWalk[(exchange, symbol, side)].Next(Random, seconds)));
                }
            }
        }
    }
}
