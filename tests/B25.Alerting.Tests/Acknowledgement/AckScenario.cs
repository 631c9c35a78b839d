using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using B25.Alerting.Tests.PagerDuty;
using B25.Alerting.Tests.Support;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;
using WireMock.Settings;

namespace B25.Alerting.Tests.Acknowledgement;

/// <summary>
/// The service in-process with Slack (Web API and response_url) and PagerDuty (Events API) stand-ins, a Slack signing
/// secret, a PagerDuty webhook secret and the actions API's token: the frame of the acknowledgement scenarios.
/// </summary>
public abstract class AckScenario : IDisposable
{
    public const string SigningSecret = "8f742231b10e8888abcd99yyyzzz85a5";
    public const string PagerDutySecret = "pd-webhook-secret-0001";
    public const string RoutingKey = "R0UT1NGKEYDEFAULT00000000000001";

    private int _clicks;

    protected AckScenario(Dictionary<string, string?>? extra = null, bool interactive = true)
    {
        Slack = new SlackStandIn();
        PagerDuty = new PagerDutyStandIn();
        Responses = WireMockServer.Start(new WireMockServerSettings { Urls = ["http://127.0.0.1:0"] });
        Responses.Given(Request.Create().UsingPost()).RespondWith(Response.Create().WithStatusCode(200).WithBody("ok"));
        var settings = new Dictionary<string, string?>
        {
            ["PagerDuty:RoutingKey"] = RoutingKey,
            ["PagerDuty:EventsUrl"] = PagerDuty.EventsUrl,
            ["PagerDuty:RetryDelay"] = "00:00:01",
            ["PagerDuty:WebhookSecret"] = PagerDutySecret,
            ["Api:BearerToken"] = AlertingFactory.Token,
        };
        if (interactive) settings["Slack:SigningSecret"] = SigningSecret;
        foreach (var (k, v) in extra ?? []) settings[k] = v;
        Factory = new AlertingFactory(Slack, settings);
        Client = Factory.Authorized();
    }

    protected SlackStandIn Slack { get; }
    protected PagerDutyStandIn PagerDuty { get; }
    protected WireMockServer Responses { get; }
    protected AlertingFactory Factory { get; }
    protected HttpClient Client { get; }

    /// <summary>The ephemeral answers posted to response_url, oldest first.</summary>
    protected IReadOnlyList<string> Ephemerals => Responses.LogEntries
        .Select(e => JsonNode.Parse(e.RequestMessage.Body ?? "{}")!)
        .Where(b => b["response_type"]?.GetValue<string>() == "ephemeral")
        .Select(b => b["text"]!.GetValue<string>()).ToList();

    protected async Task Send(string body) =>
        Assert.Equal(HttpStatusCode.OK, (await Client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(body))).StatusCode);

    protected async Task<JsonObject> Incident(string state = "open") =>
        (await Client.GetFromJsonAsync<JsonArray>($"/api/incidents?state={state}"))!.Single()!.AsObject();

    protected async Task<JsonObject> Incident(string id, bool byId) => (await Client.GetFromJsonAsync<JsonObject>($"/api/incidents/{id}"))!;

    /// <summary>Sends an alert and waits for its Slack message; returns the incident id.</summary>
    protected async Task<string> OpenAsync(string groupKey = "g1", string fingerprint = "a1")
    {
        await Send(Notifications.Body(groupKey, Notifications.Firing(fingerprint)));
        await Eventually.True(() => Slack.Posts.Count >= 1, "the incident is posted to Slack");
        return (await Incident())["id"]!.GetValue<string>();
    }

    /// <summary>A block_actions payload as Slack sends it for one click (form-encoded, field 'payload').</summary>
    public string ClickBody(string actionId, string value, string user = "U0ALICE", bool select = false)
    {
        var n = Interlocked.Increment(ref _clicks);
        var action = new JsonObject
        {
            ["action_id"] = actionId, ["block_id"] = "b25_incident_actions", ["type"] = select ? "static_select" : "button",
            ["action_ts"] = $"{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}.{n:D6}",
        };
        if (select) action["selected_option"] = new JsonObject { ["value"] = value, ["text"] = new JsonObject { ["type"] = "plain_text", ["text"] = value } };
        else action["value"] = value;
        var payload = new JsonObject
        {
            ["type"] = "block_actions",
            ["user"] = new JsonObject { ["id"] = user, ["username"] = user.ToLowerInvariant(), ["team_id"] = "T0TEAM" },
            ["api_app_id"] = "A0APP", ["token"] = "legacy-unused", ["trigger_id"] = $"trigger.{n}",
            ["container"] = new JsonObject { ["type"] = "message", ["channel_id"] = "CTRADING", ["message_ts"] = "1.000001" },
            ["channel"] = new JsonObject { ["id"] = "CTRADING", ["name"] = "trading-alerts-critical" },
            ["response_url"] = $"{Responses.Urls[0]}/actions/T0TEAM/{n}/secret",
            ["actions"] = new JsonArray(action),
        };
        return "payload=" + Uri.EscapeDataString(payload.ToJsonString());
    }

    /// <summary>Slack's v0 signature of a body at a time.</summary>
    public static string Sign(string body, long timestamp, string secret = SigningSecret) =>
        "v0=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"v0:{timestamp}:{body}")));

    protected static HttpRequestMessage SlackRequest(string body, long? timestamp = null, string? signature = null, bool signed = true)
    {
        var ts = timestamp ?? DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var request = new HttpRequestMessage(HttpMethod.Post, "/slack/interactions")
        {
            Content = new StringContent(body, Encoding.UTF8, "application/x-www-form-urlencoded"),
        };
        if (signed)
        {
            request.Headers.Add("X-Slack-Request-Timestamp", ts.ToString(CultureInfo.InvariantCulture));
            request.Headers.Add("X-Slack-Signature", signature ?? Sign(body, ts));
        }
        return request;
    }

    /// <summary>Posts a signed click; expects Slack's 200.</summary>
    protected async Task ClickAsync(string actionId, string value, string user = "U0ALICE", bool select = false)
    {
        using var response = await Factory.CreateClient().SendAsync(SlackRequest(ClickBody(actionId, value, user, select)));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    /// <summary>A PagerDuty webhook v3 body for an incident event on a dedup_key.</summary>
    protected static string PagerDutyEvent(string type, string dedupKey, string agent = "Jane Doe", string? eventId = null) =>
        new JsonObject
        {
            ["event"] = new JsonObject
            {
                ["id"] = eventId ?? Guid.NewGuid().ToString("N"),
                ["event_type"] = type,
                ["resource_type"] = "incident",
                ["occurred_at"] = DateTimeOffset.UtcNow.ToString("O"),
                ["agent"] = new JsonObject { ["id"] = "PUSER01", ["type"] = "user_reference", ["summary"] = agent },
                ["client"] = null,
                ["data"] = new JsonObject
                {
                    ["id"] = "Q1INCIDENT", ["type"] = "incident", ["status"] = type == "incident.resolved" ? "resolved" : "acknowledged",
                    ["incident_key"] = dedupKey, ["title"] = "[FIRING:1] HighErrorRate",
                },
            },
        }.ToJsonString();

    protected static HttpRequestMessage PagerDutyRequest(string body, string? signature = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/webhooks/pagerduty") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        signature ??= "v1=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(PagerDutySecret), Encoding.UTF8.GetBytes(body)));
        if (signature.Length > 0) request.Headers.Add("X-PagerDuty-Signature", signature);
        return request;
    }

    protected static IEnumerable<JsonObject> Actions(JsonObject incident) => incident["actions"]!.AsArray().Select(a => a!.AsObject());

    public void Dispose()
    {
        Client.Dispose();
        Factory.Dispose();
        Responses.Stop();
        PagerDuty.Dispose();
        Slack.Dispose();
        GC.SuppressFinalize(this);
    }
}
