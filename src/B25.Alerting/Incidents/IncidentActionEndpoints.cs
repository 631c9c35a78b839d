using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using B25.Alerting.Storage;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Incidents;

internal sealed class ApiOptions
{
    public const string Section = "Api";

    /// <summary>
    /// Bearer token for the incident actions API (<c>POST /api/incidents/{id}/acknowledge|silence|unsilence</c>), for
    /// scripts and boards. Empty: the actions API is off (404): anyone who reaches the port could otherwise silence pages.
    /// </summary>
    public string? BearerToken { get; set; }
}

/// <summary>The actions API: the same transitions, audit and answers as Slack's buttons, for scripts and boards.</summary>
internal static class IncidentActionEndpoints
{
    public static IEndpointRouteBuilder MapIncidentActions(this IEndpointRouteBuilder routes)
    {
        var api = routes.MapGroup("/api/incidents/{id}").AddEndpointFilter(RequireToken).DisableAntiforgery();
        api.MapPost("/acknowledge", (HttpContext http, IncidentActions actions, string id, CancellationToken ct) =>
            RunAsync(http, actions, id, IncidentActions.Acknowledge, ct)).WithName("AcknowledgeIncident");
        api.MapPost("/silence", (HttpContext http, IncidentActions actions, string id, CancellationToken ct) =>
            RunAsync(http, actions, id, IncidentActions.Silence, ct)).WithName("SilenceIncident");
        api.MapPost("/unsilence", (HttpContext http, IncidentActions actions, string id, CancellationToken ct) =>
            RunAsync(http, actions, id, IncidentActions.Unsilence, ct)).WithName("UnsilenceIncident");
        return routes;
    }

    /// <param name="IncidentId">The incident.</param>
    /// <param name="Action">acknowledge, silence or unsilence.</param>
    /// <param name="Result">What came of it (see the README's list of results).</param>
    /// <param name="Message">A sentence for the person who asked.</param>
    /// <param name="ActionId">The audit row (GET /api/incidents/{id} lists them).</param>
    /// <param name="Repeated">The same request (Idempotency-Key) was made before: this is its result, nothing was done again.</param>
    public sealed record ActionResponse(string IncidentId, string Action, string Result, string Message, long ActionId, bool Repeated);

    private static async ValueTask<object?> RequireToken(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var expected = http.RequestServices.GetRequiredService<IOptions<ApiOptions>>().Value.BearerToken;
        if (string.IsNullOrEmpty(expected))
            return TypedResults.Problem(title: "Not Found", statusCode: 404,
                detail: "The incident actions API is off: set Api:BearerToken to turn it on (acknowledge in Slack meanwhile).");
        var header = http.Request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        var given = header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) ? header[scheme.Length..].Trim() : "";
        if (CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(expected))) return await next(context);
        http.Response.Headers.WWWAuthenticate = "Bearer";
        return TypedResults.Problem(title: "Unauthorized", statusCode: 401,
            detail: "Missing or wrong bearer token: send 'Authorization: Bearer <Api:BearerToken>'.");
    }

    /// <summary>Optional body: <c>{"by": "alice", "duration": "4h"}</c> (duration for silence: 1h, 4h, 24h or a TimeSpan up to 7 days).</summary>
    private sealed record ActionBody(string? By, string? Duration);

    internal static async Task<IResult> RunAsync(HttpContext http, IncidentActions actions, string id, string action, CancellationToken cancellationToken)
    {
        ActionBody? body = null;
        if (http.Request.ContentLength is > 0 || http.Request.Headers.TransferEncoding.Count > 0)
        {
            if (http.Request.ContentLength is > 16 * 1024) return Bad("The body is larger than 16 KB.");
            try
            {
                body = await JsonSerializer.DeserializeAsync<ActionBody>(http.Request.Body, new JsonSerializerOptions(JsonSerializerDefaults.Web), cancellationToken);
            }
            catch (JsonException ex)
            {
                return Bad($"The body is not the expected JSON ({{\"by\": \"name\", \"duration\": \"4h\"}}): {ex.Message}");
            }
        }
        var by = body?.By?.Trim();
        if (string.IsNullOrEmpty(by)) by = "api";
        if (by.Length > 100 || by.Any(char.IsControl)) return Bad("'by' must be at most 100 characters, without control characters.");

        TimeSpan? duration = null;
        if (action == IncidentActions.Silence)
        {
            var given = body?.Duration?.Trim() ?? "1h";
            if (IncidentActions.SilenceDurations.TryGetValue(given, out var known)) duration = known;
            else if (TimeSpan.TryParse(given, System.Globalization.CultureInfo.InvariantCulture, out var parsed) && parsed > TimeSpan.Zero
                     && parsed <= IncidentActions.MaxSilence) duration = parsed;
            else return Bad($"'duration' must be 1h, 4h, 24h or a time span (hh:mm:ss) up to {IncidentActions.MaxSilence.TotalDays} days, not '{given}'.");
        }
        else if (body?.Duration is not null)
        {
            return Bad($"'duration' is only for silence, not {action}.");
        }

        var key = http.Request.Headers["Idempotency-Key"].ToString();
        if (key.Length > 200) return Bad("Idempotency-Key must be at most 200 characters.");
        // Without a key every request is its own action (an acknowledge is idempotent by its nature anyway).
        key = key.Length > 0 ? $"api:{key}" : $"api:{Guid.NewGuid():N}";

        var answer = await actions.RunAsync(new ActionRequest(id, action, by, "api", key, duration), cancellationToken);
        if (answer.Row is not { } row)
            return TypedResults.Problem(title: "Not found", statusCode: 404, detail: answer.Message);
        if (row.Action != action)
            return TypedResults.Problem(title: "Idempotency-Key reused", statusCode: 422,
                detail: $"This Idempotency-Key was used for a {row.Action} of incident {row.IncidentId}; use a new key for another action.");
        var response = new ActionResponse(row.IncidentId, row.Action, row.Result, answer.Message, row.Id, answer.Duplicate);
        return row.Result switch
        {
            ActionResults.AlreadyResolved => TypedResults.Problem(title: "Already resolved", statusCode: 409, detail: answer.Message,
                extensions: Extensions(response)),
            ActionResults.Failed when row.Detail?.StartsWith("Alertmanager did not", StringComparison.Ordinal) == true =>
                TypedResults.Problem(title: "Alertmanager did not answer", statusCode: 502, detail: answer.Message, extensions: Extensions(response)),
            ActionResults.Failed => TypedResults.Problem(title: "Not done", statusCode: 409, detail: answer.Message, extensions: Extensions(response)),
            ActionResults.Pending => TypedResults.Accepted($"/api/incidents/{row.IncidentId}", response),
            _ => TypedResults.Ok(response),
        };
    }

    private static Dictionary<string, object?> Extensions(ActionResponse response) => new()
    {
        ["incidentId"] = response.IncidentId, ["action"] = response.Action, ["result"] = response.Result, ["actionId"] = response.ActionId,
    };

    private static ProblemHttpResult Bad(string detail) => TypedResults.Problem(title: "Invalid request", statusCode: 400, detail: detail);
}
