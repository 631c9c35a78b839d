using B25.Simulator.Faults;
using Prometheus;

namespace B25.Simulator.Simulation;

/// <summary>
/// One simulated B25 service: its own registry (so each port exposes only that service's
/// metrics), the HTTP traffic every service has, and the domain metrics a subclass adds.
/// </summary>
internal abstract class ServiceSimulation
{
    private readonly Lock _gate = new();

    protected ServiceSimulation(string name, Random random, double requestsPerSecond, params HttpRoute[] routes)
    {
        Name = name;
        Random = random;
        Registry = Metrics.NewCustomRegistry();
        Factory = Metrics.WithCustomRegistry(Registry);
        Http = new HttpTraffic(Factory, random, requestsPerSecond, routes);
    }

    public string Name { get; }

    public CollectorRegistry Registry { get; }

    /// <summary>Faults that mean something for this service, beyond the ones every service has.</summary>
    public virtual IReadOnlySet<Fault> DomainFaults => new HashSet<Fault>();

    protected Random Random { get; }

    protected IMetricFactory Factory { get; }

    protected HttpTraffic Http { get; }

    public bool Supports(Fault fault) =>
        fault is Fault.ServiceDown or Fault.ErrorSpike or Fault.LatencySpike || DomainFaults.Contains(fault);

    /// <summary>Moves every metric forward by <paramref name="seconds"/> of simulated time.</summary>
    public void Advance(double seconds, IReadOnlySet<Fault> faults)
    {
        if (seconds <= 0)
        {
            return;
        }

        // Random is not thread-safe; ticks and explicit test advances may overlap.
        lock (_gate)
        {
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

    protected Summary Summary(string name, string help, params string[] labels) =>
        Factory.CreateSummary(name, help, new SummaryConfiguration
        {
            LabelNames = labels,
            Objectives =
            [
                new QuantileEpsilonPair(0.5, 0.05),
                new QuantileEpsilonPair(0.95, 0.01),
                new QuantileEpsilonPair(0.99, 0.001),
            ],
            MaxAge = TimeSpan.FromMinutes(1),
        });
}
