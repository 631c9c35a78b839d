namespace B25.Simulator.Faults;

/// <summary>A failure the simulator can inject into one simulated service.</summary>
internal enum Fault
{
    /// <summary>The service's listener is closed: scrapes are refused, so <c>up</c> drops to 0.</summary>
    ServiceDown,

    /// <summary>A large share of HTTP requests answer 5xx.</summary>
    ErrorSpike,

    /// <summary>HTTP requests take seconds instead of milliseconds.</summary>
    LatencySpike,

    /// <summary>The account loses money: drawdown above the alert threshold (account-monitor).</summary>
    Drawdown,

    /// <summary>The exchange WebSocket feeds drop (market-data).</summary>
    WebSocketDisconnect,

    /// <summary>Risk limits are breached and violations are counted (risk-manager).</summary>
    RiskViolation,
}

internal static class FaultNames
{
    private static readonly Dictionary<string, Fault> ByName = new(StringComparer.OrdinalIgnoreCase)
    {
        ["service-down"] = Fault.ServiceDown,
        ["error-spike"] = Fault.ErrorSpike,
        ["latency-spike"] = Fault.LatencySpike,
        ["drawdown"] = Fault.Drawdown,
        ["websocket-disconnect"] = Fault.WebSocketDisconnect,
        ["risk-violation"] = Fault.RiskViolation,
    };

    public static IEnumerable<string> All => ByName.Keys;

    public static bool TryParse(string name, out Fault fault) => ByName.TryGetValue(name, out fault);

    public static string ToName(this Fault fault) => fault switch
    {
        Fault.ServiceDown => "service-down",
        Fault.ErrorSpike => "error-spike",
        Fault.LatencySpike => "latency-spike",
        Fault.Drawdown => "drawdown",
        Fault.WebSocketDisconnect => "websocket-disconnect",
        Fault.RiskViolation => "risk-violation",
        _ => throw new ArgumentOutOfRangeException(nameof(fault), fault, null),
    };
}
