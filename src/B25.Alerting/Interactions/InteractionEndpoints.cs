using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using B25.Alerting.Delivery.PagerDuty;
using B25.Alerting.Delivery.Slack;
using B25.Alerting.Incidents;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Interactions;

/// <summary>
/// Signed requests from people acting elsewhere: Slack's button clicks (<c>POST /slack/interactions</c>) and PagerDuty's
/// webhooks (<c>POST /webhooks/pagerduty</c>). Each is on only when its secret is set (404 otherwise), and a request
/// whose signature fails is answered 401 before anything is read or recorded.
/// </summary>
internal static partial class InteractionEndpoints
{
    public static IEndpointRouteBuilder MapInteractions(this IEndpointRouteBuilder routes)
    {
        var services = routes.ServiceProvider;
        if (services.GetRequiredService<IOptions<SlackOptions>>().Value.Interactive)
            routes.MapPost("/slack/interactions", SlackAsync).RequireAuthorization(SignedRequests.SlackPolicy).DisableAntiforgery()
                .WithName("SlackInteractions");
        if (!string.IsNullOrEmpty(services.GetRequiredService<IOptions<PagerDutyOptions>>().Value.WebhookSecret))
            routes.MapPost("/webhooks/pagerduty", PagerDutyAsync).RequireAuthorization(SignedRequests.PagerDutyPolicy).DisableAntiforgery()
                .WithName("PagerDutyWebhook");
        return routes;
    }

    /// <summary>
    /// A block_actions payload: the click is recorded (durably, in the incident's order) before Slack gets its 200; what
    /// takes longer (asking Alertmanager) and the clicking user's ephemeral answer follow. The message itself shows what
    /// changed; the ephemeral answer says what did not ("already acknowledged by ...").
    /// </summary>
    internal static async Task<IResult> SlackAsync(HttpContext http, IncidentActions actions, ActionRunner runner, SlackResponder responder,
        IOptions<SlackOptions> options, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var body = http.Features.Get<SignedBody>()!.Bytes;
        JsonObject payload;
        try
        {
            var form = QueryHelpers.ParseQuery(Encoding.UTF8.GetString(body));
            payload = JsonNode.Parse(form.TryGetValue("payload", out var p) ? p.ToString() : "")?.AsObject()
                      ?? throw new JsonException("payload is JSON null");
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            InteractionMetrics.Interactions.WithLabels("other", "invalid").Inc();
            return Bad($"The body must be a form with a 'payload' field holding Slack's interaction JSON: {ex.Message}");
        }
        if (Text(payload["type"]) != "block_actions")
        {
            InteractionMetrics.Interactions.WithLabels("other", "ignored").Inc();
            return TypedResults.Ok(); // shortcuts, view submissions: not used by the service
        }
        var user = Text(payload["user"]?["id"]);
        var responseUrl = Text(payload["response_url"]);
        var action = (payload["actions"] as JsonArray)?.OfType<JsonObject>().FirstOrDefault();
        if (user is null || action is null) return Bad("The block_actions payload has no user.id or no actions.");
        var actionId = Text(action["action_id"]) ?? "";
        var value = Text(action["value"]) ?? Text(action["selected_option"]?["value"]) ?? "";
        var actionTs = Text(action["action_ts"]) ?? Text(payload["trigger_id"]) ?? Guid.NewGuid().ToString("N");

        var label = actionId is SlackRenderer.ActionIds.Acknowledge or SlackRenderer.ActionIds.Silence or SlackRenderer.ActionIds.Unsilence
            or SlackRenderer.ActionIds.Runbook or SlackRenderer.ActionIds.Grafana ? actionId : "other";
        if (label is "other" or SlackRenderer.ActionIds.Runbook or SlackRenderer.ActionIds.Grafana)
        {
            InteractionMetrics.Interactions.WithLabels(label, "ignored").Inc();
            return TypedResults.Ok(); // link buttons open their URL in Slack; the click is only reported
        }

        var allowed = options.Value.AllowedUsers;
        if (allowed.Count > 0 && !allowed.Contains(user, StringComparer.Ordinal))
        {
            InteractionMetrics.Interactions.WithLabels(label, "not_allowed").Inc();
            if (responseUrl is not null)
                runner.Enqueue(ct => responder.EphemeralAsync(responseUrl, "You are not on the list of people who may act on incidents (Slack:AllowedUsers).", ct));
            return TypedResults.Ok();
        }

        string incidentId = value;
        TimeSpan? duration = null;
        if (actionId == SlackRenderer.ActionIds.Silence)
        {
            var parts = value.Split('|');
            if (parts.Length != 2 || !IncidentActions.SilenceDurations.TryGetValue(parts[1], out var d))
                return Bad($"The silence option's value must be '<incident id>|1h', '|4h' or '|24h', not '{value}'.");
            incidentId = parts[0];
            duration = d;
        }
        if (incidentId.Length is 0 or > 100) return Bad("The action's value must be an incident id.");

        // The same click delivered twice (Slack retrying) is one action; two clicks are two, of which the first wins.
        var request = new ActionRequest(incidentId, actionId, user, "slack", $"slack:{user}:{actionId}:{actionTs}", duration);
        var (answer, finish) = await actions.StartAsync(request, cancellationToken);
        InteractionMetrics.Interactions.WithLabels(label, "recorded").Inc();
        runner.Enqueue(async ct =>
        {
            var final = finish is null ? answer : await finish(ct);
            if (responseUrl is not null && !ShownByTheMessage(final.Result))
                await responder.EphemeralAsync(responseUrl, final.Message, ct);
        });
        return TypedResults.Ok();
    }

    /// <summary>Results the edited message shows by itself: no ephemeral answer needed.</summary>
    private static bool ShownByTheMessage(string result) =>
        result is Storage.ActionResults.Acknowledged or Storage.ActionResults.Silenced or Storage.ActionResults.Unsilenced;

    /// <summary>
    /// A PagerDuty webhook (v3). <c>incident.acknowledged</c> for one of the service's dedup_keys is the acknowledge
    /// transition with source PagerDuty (not sent back to PagerDuty); <c>incident.resolved</c> is shown in the thread
    /// but closes nothing: only Prometheus closes an incident. Anything else is answered 200 and ignored.
    /// </summary>
    internal static async Task<IResult> PagerDutyAsync(HttpContext http, IncidentActions actions, Storage.IIncidentActionStore store,
        CancellationToken cancellationToken)
    {
        var body = http.Features.Get<SignedBody>()!.Bytes;
        JsonObject? evt;
        try
        {
            evt = JsonNode.Parse(body)?["event"] as JsonObject;
        }
        catch (JsonException ex)
        {
            InteractionMetrics.PagerDutyWebhooks.WithLabels("other", "invalid").Inc();
            return Bad($"The body is not JSON: {ex.Message}");
        }
        if (evt is null)
        {
            InteractionMetrics.PagerDutyWebhooks.WithLabels("other", "invalid").Inc();
            return Bad("The body has no 'event' object (PagerDuty webhooks v3).");
        }
        var type = Text(evt["event_type"]) ?? "";
        var label = type is "incident.acknowledged" or "incident.resolved" ? type : "other";
        if (label == "other")
        {
            InteractionMetrics.PagerDutyWebhooks.WithLabels(label, "ignored").Inc();
            return TypedResults.Ok();
        }
        var eventId = Text(evt["id"]);
        var dedupKey = Text(evt["data"]?["incident_key"]);
        if (eventId is null) return Bad("The event has no 'id'.");
        // The service's dedup_keys are "b25-" + its alert group's id (PagerDutyEvents.DedupKey).
        if (dedupKey is not { Length: 68 } || !dedupKey.StartsWith("b25-", StringComparison.Ordinal)
            || await store.LatestOfGroupAsync(dedupKey[4..], cancellationToken) is not { } incidentId)
        {
            InteractionMetrics.PagerDutyWebhooks.WithLabels(label, "unknown_incident").Inc();
            return TypedResults.Ok(); // another integration's incident on the same service
        }
        var who = Text(evt["agent"]?["summary"]) ?? Text(evt["agent"]?["id"]) ?? "someone in PagerDuty";
        if (who.Length > 100) who = who[..100];
        var action = label == "incident.acknowledged" ? IncidentActions.Acknowledge : IncidentActions.PagerDutyResolve;
        var answer = await actions.RunAsync(new ActionRequest(incidentId, action, who, "pagerduty", $"pagerduty:{eventId}"), cancellationToken);
        InteractionMetrics.PagerDutyWebhooks.WithLabels(label, action == IncidentActions.Acknowledge ? "recorded" : "shown").Inc();
        return TypedResults.Ok(new { incidentId, result = answer.Result });
    }

    private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    private static IResult Bad(string detail) => TypedResults.Problem(title: "Invalid request", statusCode: 400, detail: detail);
}
