using Prometheus;

namespace B25.Simulator.Simulation;

/// <summary>An HTTP route a service answers, and its share of the traffic.</summary>
internal sealed record HttpRoute(string Method, string Path, double Weight, double MedianSeconds);

/// <summary>
/// The RED metrics every B25 service exposes: <c>http_requests_total</c> and
/// <c>http_request_duration_seconds</c>. Healthy: well under 1% 5xx and a p95 far below 1 s.
/// </summary>
internal sealed class HttpTraffic
{
    internal static readonly double[] DurationBuckets =
        [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private const double HealthyServerErrorRatio = 0.002;
    private const double HealthyClientErrorRatio = 0.01;
    private const double SpikeServerErrorRatio = 0.5;

    private readonly Random _random;
    private readonly double _requestsPerSecond;
    private readonly HttpRoute[] _routes;
    private readonly double _totalWeight;
    private readonly Counter _requests;
    private readonly Histogram _duration;
    private readonly Cadence _serverErrors = new(HealthyServerErrorRatio);
    private readonly Cadence _clientErrors = new(HealthyClientErrorRatio);
    private double _carry;

    public HttpTraffic(IMetricFactory factory, Random random, double requestsPerSecond, HttpRoute[] routes)
    {
        _random = random;
        _requestsPerSecond = requestsPerSecond;
        _routes = routes;
        _totalWeight = routes.Sum(r => r.Weight);
        _requests = factory.CreateCounter(
            "http_requests_total", "HTTP requests served, by method, route template and status code.",
            ["method", "route", "status"]);
        _duration = factory.CreateHistogram(
            "http_request_duration_seconds", "HTTP request duration in seconds.",
            new HistogramConfiguration { LabelNames = ["method", "route"], Buckets = DurationBuckets });

        // Publish the common series from the first scrape so rate() has a baseline.
        foreach (var route in routes)
        {
            _requests.WithLabels(route.Method, route.Path, "200").IncTo(0);
            _requests.WithLabels(route.Method, route.Path, "500").IncTo(0);
            _duration.WithLabels(route.Method, route.Path);
        }
    }

    public void Advance(double seconds, bool errorSpike, bool latencySpike)
    {
        var count = _random.Events(_requestsPerSecond, seconds, ref _carry);
        for (var i = 0; i < count; i++)
        {
            var route = PickRoute();
            var serverError = errorSpike ? _random.NextDouble() < SpikeServerErrorRatio : _serverErrors.Next();
            var status = serverError ? (_random.NextDouble() < 0.7 ? "500" : "503")
                : _clientErrors.Next() ? (_random.NextDouble() < 0.5 ? "400" : "404")
                : "200";
            var seconds0 = latencySpike
                ? _random.Between(1.5, 4.0)
                : Math.Min(_random.LogNormal(route.MedianSeconds, 0.5), 0.9);
            _requests.WithLabels(route.Method, route.Path, status).Inc();
            _duration.WithLabels(route.Method, route.Path).Observe(seconds0);
        }
    }

    private HttpRoute PickRoute()
    {
        var pick = _random.NextDouble() * _totalWeight;
        foreach (var route in _routes)
        {
            pick -= route.Weight;
            if (pick <= 0)
            {
                return route;
            }
        }

        return _routes[^1];
    }
}
