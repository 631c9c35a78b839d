using Microsoft.AspNetCore.Http.HttpResults;

namespace B25.Alerting.Runbooks;

/// <summary>The runbooks as HTML pages: what every message's runbook link opens.</summary>
internal static class RunbookEndpoints
{
    private const string Html = "text/html; charset=utf-8";

    public static IEndpointRouteBuilder MapRunbooks(this IEndpointRouteBuilder routes)
    {
        // Read the runbooks now, so a malformed one is reported at start rather than at the first page.
        _ = routes.ServiceProvider.GetRequiredService<RunbookLibrary>();

        var pages = routes.MapGroup("/runbooks").AddEndpointFilter(async (context, next) =>
        {
            var headers = context.HttpContext.Response.Headers;
            headers.ContentSecurityPolicy = RunbookPages.ContentSecurityPolicy;
            headers.XContentTypeOptions = "nosniff";
            headers["Referrer-Policy"] = "no-referrer";
            return await next(context);
        });
        pages.MapGet("", Index).WithName("RunbookIndex");
        pages.MapGet("/{alertname}", Page).WithName("Runbook");
        return routes;
    }

    internal static ContentHttpResult Index(RunbookLibrary library, HttpRequest request) =>
        TypedResults.Content(RunbookPages.Index(library.All, request.PathBase.ToUriComponent()), Html);

    internal static ContentHttpResult Page(string alertname, RunbookLibrary library, HttpRequest request)
    {
        var pathBase = request.PathBase.ToUriComponent();
        return library.Find(alertname) is { } runbook
            ? TypedResults.Content(RunbookPages.Page(runbook, pathBase), Html)
            : TypedResults.Content(RunbookPages.NotFound(alertname, library.Similar(alertname), pathBase), Html, statusCode: StatusCodes.Status404NotFound);
    }
}
