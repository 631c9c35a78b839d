using System.Net;
using B25.Alerting.Storage;
using Microsoft.AspNetCore.Http.HttpResults;

namespace B25.Alerting.Hosting;

/// <summary><c>GET /</c>: a small page for whoever opens the service in a browser, linking what it serves.</summary>
internal static class HomeEndpoints
{
    /// <summary>The links the page shows (relative, so they work behind a proxy path too).</summary>
    public static readonly IReadOnlyList<(string Href, string Text, string What)> Links =
    [
        ("api/incidents", "Open incidents", "JSON: incidents not yet resolved, newest first, with their alerts and deliveries"),
        ("api/incidents?state=closed", "Closed incidents", "JSON: the latest resolved incidents"),
        ("api/emergency-stops", "Emergency stops", "JSON: stops asked of the risk manager, with their answers"),
        ("runbooks", "Runbooks", "one per alert rule: what it means and what to do first"),
        ("metrics", "Metrics", "Prometheus text format"),
        ("health/ready", "Readiness", "storage writable, bus up, Slack token accepted"),
        ("health/live", "Liveness", "the process answers"),
    ];

    public static IEndpointRouteBuilder MapHome(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/", Home).ExcludeFromDescription();
        return routes;
    }

    private static ContentHttpResult Home(IStorageProvider storage)
    {
        var version = typeof(HomeEndpoints).Assembly
            .GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion.Split('+')[0] ?? "";
        var items = string.Join("\n", Links.Select(l =>
            $"""    <li><a href="{WebUtility.HtmlEncode(l.Href)}">{WebUtility.HtmlEncode(l.Text)}</a> <span>{WebUtility.HtmlEncode(l.What)}</span></li>"""));
        var html = $"""
            <!doctype html>
            <html lang="en">
            <head>
              <meta charset="utf-8">
              <meta name="viewport" content="width=device-width, initial-scale=1">
              <title>B25.Alerting</title>
              <style>
                body {"{"} font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 44rem; padding: 0 1rem; color: #1d1d1f; {"}"}
                li {"{"} margin: .4rem 0; {"}"} span {"{"} color: #666; {"}"} footer {"{"} margin-top: 2rem; color: #666; font-size: .85rem; {"}"}
              </style>
            </head>
            <body>
              <h1>B25.Alerting</h1>
              <p>Alertmanager's notifications become one page per incident on Slack, PagerDuty, email and the risk manager.
              Alertmanager posts to <code>/webhooks/alertmanager</code>.</p>
              <ul>
            {items}
              </ul>
              <footer>version {WebUtility.HtmlEncode(version)} · storage {WebUtility.HtmlEncode(storage.Kind.ToString())}</footer>
            </body>
            </html>
            """;
        return TypedResults.Content(html, "text/html; charset=utf-8");
    }
}
