using WireMock.Types;
using WireMock.Util;

namespace B25.Alerting.Tests.Support;

/// <summary>The answers the WireMock stand-ins of SaaS APIs (Slack, PagerDuty) give.</summary>
public static class StandInResponse
{
    /// <summary>A JSON answer with a status and, where given, a Retry-After header in seconds.</summary>
    public static WireMock.ResponseMessage Json(int status, string body, int? retryAfter = null)
    {
        var headers = new Dictionary<string, WireMockList<string>> { ["Content-Type"] = new("application/json") };
        if (retryAfter is { } seconds) headers["Retry-After"] = new(seconds.ToString());
        return new WireMock.ResponseMessage
        {
            StatusCode = status,
            Headers = headers,
            BodyData = new BodyData { BodyAsString = body, DetectedBodyType = BodyType.String },
        };
    }
}
