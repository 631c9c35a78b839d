using B25.Simulator.Faults;
using Prometheus;

namespace B25.Simulator.Simulation;

/// <summary>
/// One simulated B25 service: its own registry (so each port exposes only that service's
/// metrics), what every service exposes (HTTP traffic, standard process metrics), and the domain
/// metrics a subclass adds. Names, types and labels follow prometheus/metrics-contract.yaml.
/// </summary>
internal abstract class ServiceSimulation
{
    /// <summary>Latency buckets of the contract for the trading paths: 0.1 ms .. 1 s.</summary>
    protected static readonly double[] FastPathBuckets =
        [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

    private readonly Lock _gate = new();
    private readonly Counter _cpuSeconds;
    private readonly Gauge _residentMemory;
    private readonly Wander _memory;

    protected ServiceSimulation(string name, Random random, TimeProvider time, double requestsPerSecond, params HttpRoute[] routes)
    {
        Name = name;
        Random = random;
        Time = time;
        Registry = Metrics.NewCustomRegistry();
        Factory = Metrics.WithCustomRegistry(Registry);
        Http = new HttpTraffic(Factory, random, requestsPerSecond, routes);

        Gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.")
            .Set(time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0);
        _cpuSeconds = Counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.");
        _residentMemory = Gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
        _memory = new Wander(180e6, 2e6, 120e6, 260e6);
        _residentMemory.Set(_memory.Value);
    }

    public string Name { get; }

    public CollectorRegistry Registry { get; }

    /// <summary>Faults that mean something for this service, beyond the ones every service has.</summary>
    public virtual IReadOnlySet<Fault> DomainFaults { get; } = new HashSet<Fault>();

    protected Random Random { get; }

    protected TimeProvider Time { get; }

    protected IMetricFactory Factory { get; }

    protected HttpTraffic Http { get; }

    protected double UnixNow => Time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;

    public bool Supports(Fault fault) =>
        fault is Fault.ServiceDown or Fault.ErrorSpike or Fault.LatencySpike || DomainFaults.Contains(fault);

    /// <summary>Moves every metric forward by <paramref name="seconds"/> of simulated time.</summary>
    public void Advance(double seconds, IReadOnlySet<Fault> faults)
    {
        if (seconds <= 0)
        {
            return;
        }

        // Random is not thread-safe; clock ticks and explicit test advances may overlap.
        lock (_gate)
        {
            _cpuSeconds.Inc(seconds * Random.Between(0.05, 0.15));
            _residentMemory.Set(Math.Round(_memory.Next(Random, seconds)));
            Http.Advance(seconds, faults.Contains(Fault.ErrorSpike), faults.Contains(Fault.LatencySpike));
            AdvanceDomain(seconds, faults);
        }
    }

    public async Task WriteExpositionAsync(Stream destination, CancellationToken cancellationToken) =>
        await Registry.CollectAndExportAsTextAsync(destination, cancellationToken);

    protected abstract void AdvanceDomain(double seconds, IReadOnlySet<Fault> faults);

    protected Gauge Gauge(string name, string help, params string[] labels) =>
        Factory.CreateGauge(name, help, labels);

    protected Counter Counter(string name, string help, params string[] labels) =>
        Factory.CreateCounter(name, help, labels);

    protected Histogram Histogram(string name, string help, double[] buckets, params string[] labels) =>
        Factory.CreateHistogram(name, help, new HistogramConfiguration { LabelNames = labels, Buckets = buckets });

    /// <summary>Every combination of the given label values (to initialise counters at 0, as the contract asks).</summary>
    protected static IEnumerable<string[]> Combinations(params string[][] values)
    {
        IEnumerable<string[]> result = [[]];
        foreach (var set in values)
        {
            result = result.SelectMany(prefix => set.Select(v => (string[])[.. prefix, v])).ToArray();
        }

        return result;
    }
}
