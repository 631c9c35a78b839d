using System.Diagnostics;
using System.Globalization;
using Prometheus;

namespace B25.Alerting.Observability;

/// <summary>
/// The HTTP metrics every B25 service exposes (prometheus/metrics-contract.yaml): <c>http_requests_total{method,route,status}</c>
/// and <c>http_request_duration_seconds{method,route}</c>, which the recording rules behind HighErrorRate and
/// SlowResponseTime read per service. <c>route</c> is the endpoint's template (<c>/api/incidents/{id}</c>), never the
/// raw path, so the series stay few; a request no endpoint took is <c>unmatched</c>.
/// </summary>
internal static class HttpRequestMetrics
{
    public static readonly Counter Requests = Metrics.CreateCounter(
        "http_requests_total", "HTTP requests served, by method, route template and status code (e.g. 200, 503).",
        new CounterConfiguration { LabelNames = ["method", "route", "status"] });

    public static readonly Histogram Duration = Metrics.CreateHistogram(
        "http_request_duration_seconds", "HTTP request duration.",
        new HistogramConfiguration
        {
            LabelNames = ["method", "route"],
            Buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        });

    public static IApplicationBuilder UseHttpRequestMetrics(this IApplicationBuilder app)
    {
        var warmUps = app.ApplicationServices.GetService<B25.Alerting.Hosting.WarmUpRequests>();
        return app.Use(async (context, next) =>
    {
        // The start's warm-up calls (Hosting/WarmUpRequests) are not requests anyone made.
        if (warmUps is not null && warmUps.Marks(context.Request))
        {
            await next(context);
            return;
        }
        var started = Stopwatch.GetTimestamp();
        try
        {
            await next(context);
        }
        finally
        {
            var route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText is { } template
                ? "/" + template.TrimStart('/')
                : "unmatched";
            var method = context.Request.Method;
            // Outside the exception handler: a failure is counted with the 500 the handler answered.
            Requests.WithLabels(method, route, context.Response.StatusCode.ToString(CultureInfo.InvariantCulture)).Inc();
            Duration.WithLabels(method, route).Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
    });
    }
}
