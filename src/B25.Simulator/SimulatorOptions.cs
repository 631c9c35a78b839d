using System.ComponentModel.DataAnnotations;

namespace B25.Simulator;

/// <summary>The "Simulator" configuration section.</summary>
internal sealed class SimulatorOptions
{
    public const string Section = "Simulator";

    /// <summary>Address every listener binds to. Loopback by default: the simulator is a test tool.</summary>
    [Required]
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>
    /// Port of the first service (market-data); the others follow in the order of the B25 services
    /// (9090..9096 by default). 0 gives every service an ephemeral port (see GET /services).
    /// </summary>
    [Range(0, 65528)]
    public int PortBase { get; set; } = 9090;

    /// <summary>Per-service port overrides, keyed by service name (e.g. Simulator:Ports:risk-manager=19094).</summary>
    public Dictionary<string, int> Ports { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Port of the control API (faults, service list). 0 = ephemeral.</summary>
    [Range(0, 65535)]
    public int ControlPort { get; set; } = 9199;

    /// <summary>Seed of the random walk, for repeatable runs; unset = random.</summary>
    public int? Seed { get; set; }

    /// <summary>How often the simulated world moves forward.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan TickInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    public int PortFor(string service, int index) =>
        Ports.TryGetValue(service, out var port) ? port : PortBase == 0 ? 0 : PortBase + index;
}
