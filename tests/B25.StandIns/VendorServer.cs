using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using WireMock.Server;
using WireMock.Settings;

namespace B25.StandIns;

/// <summary>
/// The host of a vendor stand-in: WireMock on 127.0.0.1 and a free port, with the stand-in's own handler in front of
/// WireMock's mappings. The handler sees the whole <see cref="HttpContext"/> (it can abort the connection or notice a
/// client that hung up, as the fault suite needs); what it does not answer falls through to the mappings a test adds.
/// </summary>
internal static class VendorServer
{
    /// <param name="answer">Answers a request and returns true, or returns false to leave it to WireMock.</param>
    public static WireMockServer Start(Func<HttpContext, Task<bool>> answer) =>
        WireMockServer.Start(new WireMockServerSettings
        {
            Urls = ["http://127.0.0.1:0"],
            PreWireMockMiddlewareInit = app => ((IApplicationBuilder)app).Use(async (HttpContext context, RequestDelegate next) =>
            {
                if (!await answer(context)) await next(context);
            }),
        });

    /// <summary>A JSON answer with a status and, where given, a Retry-After header in seconds; a client that hung up is not an error.</summary>
    public static async Task WriteJsonAsync(HttpContext context, int status, string body, int? retryAfter = null)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=utf-8";
        if (retryAfter is { } seconds) context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        try { await context.Response.WriteAsync(body, context.RequestAborted); }
        catch (OperationCanceledException) { }
    }

    /// <summary>Waits <paramref name="delay"/> or until the client hangs up; false when it did.</summary>
    public static async Task<bool> DelayAsync(HttpContext context, TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, context.RequestAborted);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
