using System.Net;
using B25.Alerting.Tests.Acknowledgement;
using B25.Alerting.Tests.Support;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.Observability;

/// <summary>
/// The service's counters live in prometheus-net's process-wide registry, and span listeners hear every span of the
/// process: every in-process service of a test run adds to the same series and traces. The tests of this collection run
/// alone, after the others, so they can count exactly.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideMetrics
{
    public const string Name = "process-wide metrics";
}

[Collection(ProcessWideMetrics.Name)]
public sealed class ExactMetricsTests : SlackScenario
{
    private async Task<double> Read(string series)
    {
        await Factory.WarmedUpAsync(); // the start is over: nothing of it falls between "before" and "after"
        return await MetricsText.ReadAsync(Client, series);
    }

    [Fact]
    public async Task Each_duplicate_notification_is_counted_once()
    {
        var body = Body("g1", Firing("a1"));
        await Send(body);
        await Factory.SettledAsync();
        var before = await Read("b25_alerting_duplicates_dropped_total");

        await Send(body);
        var copyFromPeer = Build("g1", "b25-critical", Firing("a1"));
        copyFromPeer["externalURL"] = "http://alertmanager-2.test:9093";
        await Send(copyFromPeer.ToJsonString());
        await Factory.SettledAsync();

        Assert.Equal(before + 2, await Read("b25_alerting_duplicates_dropped_total"));
        Assert.Single(Slack.Posts);
    }

    [Fact]
    public async Task A_refused_webhook_is_counted_by_its_reason()
    {
        const string Unauthorized = "b25_alerting_notifications_rejected_total{reason=\"unauthorized\"}";
        var before = await Read(Unauthorized);
        using var anonymous = Factory.CreateClient();
        anonymous.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "nope");

        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(Body("g1", Firing("a1"))))).StatusCode);

        Assert.Equal(before + 1, await Read(Unauthorized));
    }

    [Fact]
    public async Task A_delivery_that_fails_for_good_is_counted_once()
    {
        const string Failed = "b25_alerting_deliveries_total{channel=\"slack\",outcome=\"failed\"}";
        Slack.Respond(c => c.Channel == "#trading-alerts-critical" ? (200, """{"ok":false,"error":"channel_not_found"}""", null) : null);
        var before = await Read(Failed);

        await Send(Body("g1", Firing("a1")));
        await Factory.SettledAsync();

        Assert.Equal(before + 1, await Read(Failed));
    }
}

[Collection(ProcessWideMetrics.Name)]
public sealed class ExactSignedRequestMetricsTests : AckScenario
{
    [Fact]
    public async Task A_request_with_a_bad_signature_is_counted_once_by_its_reason()
    {
        const string BadSignature = "b25_alerting_signed_requests_rejected_total{source=\"slack\",reason=\"bad_signature\"}";
        var id = await OpenAsync();
        await Factory.WarmedUpAsync();
        var before = await MetricsText.ReadAsync(Client, BadSignature);
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var body = ClickBody("acknowledge", id);

        using var response = await Factory.CreateClient().SendAsync(SlackRequest(body, now, Sign(body, now, "another-secret")));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal(before + 1, await MetricsText.ReadAsync(Client, BadSignature));
    }
}
