using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using B25.Alerting.Tests.Support;
using Microsoft.Data.Sqlite;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests;

/// <summary>One test per bad-input rule: a problem+json answer saying what is wrong, and nothing stored or sent.</summary>
public sealed class WebhookInputTests : IDisposable
{
    private readonly SlackStandIn _slack = new();
    private readonly AlertingFactory _factory;

    public WebhookInputTests()
    {
        _factory = new AlertingFactory(_slack, new() { ["Webhook:MaxBodyBytes"] = "65536", ["Webhook:JournalTimeout"] = "00:00:01" });
    }

    public void Dispose()
    {
        _factory.Dispose();
        _slack.Dispose();
    }

    private async Task<JsonObject> AssertRejected(HttpResponseMessage response, HttpStatusCode status, string detailFragment)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal((int)status, problem["status"]!.GetValue<int>());
        Assert.Contains(detailFragment, problem["detail"]!.GetValue<string>());
        await AssertNothingStored();
        return problem;
    }

    private async Task AssertNothingStored()
    {
        await using var connection = new SqliteConnection($"Data Source={_factory.DatabasePath}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT (SELECT COUNT(*) FROM notifications) + (SELECT COUNT(*) FROM incidents) + (SELECT COUNT(*) FROM deliveries)";
        Assert.Equal(0L, (long)(await command.ExecuteScalarAsync())!);
        await Eventually.Stays(() => _slack.Calls.Count == 0, "nothing sent to Slack", 300);
    }

    private Task<HttpResponseMessage> Post(string body, string? token = AlertingFactory.Token, string contentType = "application/json")
    {
        var client = _factory.CreateClient();
        if (token is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client.PostAsync("/webhooks/alertmanager", new StringContent(body, Encoding.UTF8, contentType));
    }

    private static string Mutate(Action<JsonObject> change)
    {
        var body = Build("g1", "b25-critical", Firing("a1"));
        change(body);
        return body.ToJsonString();
    }

    [Fact]
    public async Task Missing_token_is_401() =>
        await AssertRejected(await Post(Body("g1", Firing("a1")), token: null), HttpStatusCode.Unauthorized, "bearer token");

    [Fact]
    public async Task Wrong_token_is_401() =>
        await AssertRejected(await Post(Body("g1", Firing("a1")), token: "nope"), HttpStatusCode.Unauthorized, "bearer token");

    [Fact]
    public async Task Not_json_is_415() =>
        await AssertRejected(await Post(Body("g1", Firing("a1")), contentType: "text/plain"), HttpStatusCode.UnsupportedMediaType, "text/plain");

    [Fact]
    public async Task Malformed_json_is_400() =>
        await AssertRejected(await Post("{\"version\": \"4\", \"alerts\": [", token: AlertingFactory.Token), HttpStatusCode.BadRequest, "Malformed JSON");

    [Fact]
    public async Task Version_other_than_4_is_400() =>
        await AssertRejected(await Post(Mutate(b => b["version"] = "3")), HttpStatusCode.BadRequest, "version");

    [Fact]
    public async Task Missing_group_key_is_400() =>
        await AssertRejected(await Post(Mutate(b => b.Remove("groupKey"))), HttpStatusCode.BadRequest, "groupKey");

    [Fact]
    public async Task Missing_receiver_is_400() =>
        await AssertRejected(await Post(Mutate(b => b.Remove("receiver"))), HttpStatusCode.BadRequest, "receiver");

    [Fact]
    public async Task Missing_alerts_is_400() =>
        await AssertRejected(await Post(Mutate(b => b.Remove("alerts"))), HttpStatusCode.BadRequest, "alerts");

    [Fact]
    public async Task Alert_without_fingerprint_is_400() =>
        await AssertRejected(await Post(Mutate(b => b["alerts"]![0]!.AsObject().Remove("fingerprint"))), HttpStatusCode.BadRequest, "fingerprint");

    [Fact]
    public async Task Alert_without_starts_at_is_400() =>
        await AssertRejected(await Post(Mutate(b => b["alerts"]![0]!.AsObject().Remove("startsAt"))), HttpStatusCode.BadRequest, "startsAt");

    [Fact]
    public async Task Alert_with_unparseable_starts_at_is_400() =>
        await AssertRejected(await Post(Mutate(b => b["alerts"]![0]!["startsAt"] = "yesterday")), HttpStatusCode.BadRequest, "startsAt");

    [Fact]
    public async Task Alert_with_invalid_status_is_400() =>
        await AssertRejected(await Post(Mutate(b => b["alerts"]![0]!["status"] = "pending")), HttpStatusCode.BadRequest, "\"pending\"");

    [Fact]
    public async Task Alert_without_status_is_400() =>
        await AssertRejected(await Post(Mutate(b => b["alerts"]![0]!.AsObject().Remove("status"))), HttpStatusCode.BadRequest, "status");

    [Fact]
    public async Task Body_over_the_limit_is_413()
    {
        var alerts = Enumerable.Range(0, 400).Select(i => Firing($"fp{i}")).ToArray();
        await AssertRejected(await Post(Body("g1", alerts)), HttpStatusCode.RequestEntityTooLarge, "MaxBodyBytes");
    }

    [Fact]
    public async Task Journal_unavailable_is_503_and_nothing_is_accepted()
    {
        using var warmup = _factory.CreateClient(); // start the host, migrate the schema
        Assert.Equal(HttpStatusCode.OK, (await warmup.GetAsync("/health/live")).StatusCode);

        await using (var blocker = new SqliteConnection($"Data Source={_factory.DatabasePath};Pooling=False"))
        {
            await blocker.OpenAsync();
            await using (var lockIt = blocker.CreateCommand())
            {
                lockIt.CommandText = "BEGIN EXCLUSIVE;";
                await lockIt.ExecuteNonQueryAsync();
            }
            var response = await Post(Body("g1", Firing("a1")));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            await using var rollback = blocker.CreateCommand();
            rollback.CommandText = "ROLLBACK;";
            await rollback.ExecuteNonQueryAsync();
        }
        await Task.Delay(1500); // a journal write that was still queued would land now
        await AssertNothingStored();

        // Alertmanager's retry then goes through.
        var retry = await Post(Body("g1", Firing("a1")));
        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
        await Eventually.True(() => _slack.Posts.Count == 1, "the retried notification is delivered");
    }

    [Fact]
    public async Task Rejections_are_counted_by_reason()
    {
        using var client = _factory.CreateClient();
        var before = await MetricsText.ReadAsync(client, "b25_alerting_notifications_rejected_total{reason=\"unauthorized\"}");
        await Post(Body("g1", Firing("a1")), token: "nope");
        Assert.True(await MetricsText.ReadAsync(client, "b25_alerting_notifications_rejected_total{reason=\"unauthorized\"}") >= before + 1);
    }
}

/// <summary>The default body limit holds a 20,000-alert group.</summary>
public sealed class LargeNotificationTests : IDisposable
{
    private readonly SlackStandIn _slack = new();
    private readonly AlertingFactory _factory;

    public LargeNotificationTests() => _factory = new AlertingFactory(_slack);

    public void Dispose()
    {
        _factory.Dispose();
        _slack.Dispose();
    }

    [Fact]
    public async Task Default_limit_accepts_a_20000_alert_group()
    {
        var alerts = Enumerable.Range(0, 20_000).Select(i => Firing($"fp{i:D5}") with
        {
            Labels = new()
            {
                ["alertname"] = "HighErrorRate", ["severity"] = "critical", ["service"] = "order-execution",
                ["instance"] = $"order-execution-{i}:9091", ["job"] = "order-execution", ["tier"] = "critical",
            },
            Annotations = new()
            {
                ["summary"] = $"Error rate above 5% on order-execution-{i}",
                ["description"] = "The order-execution service answers more than 5% of requests with errors for 2 minutes.",
                ["runbook_url"] = "http://alerting.test/runbooks/HighErrorRate",
            },
        }).ToArray();
        var body = Body("g-huge", alerts);
        Assert.True(body.Length > 10_000_000, $"a realistic 20,000-alert body is large ({body.Length} bytes)");

        using var client = _factory.Authorized();
        var response = await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(body));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await Eventually.True(() => _slack.Posts.Count == 1, "one post for the whole group", 30_000);
        Assert.Contains("20000 firing", _slack.Posts[0].Text);
    }
}

/// <summary>What the intake accepts, the processor can bind: nulls and unknown fields included.</summary>
public sealed class WebhookEdgeCaseTests : SlackScenario
{
    [Fact]
    public async Task Nulls_and_unknown_fields_are_accepted_and_processed()
    {
        var body = Build("g-edge", "b25-critical", Firing("e1"));
        body["truncatedAlerts"] = null;
        body["commonAnnotations"] = null;
        body["somethingNew"] = new JsonObject { ["nested"] = 1 };
        var alert = body["alerts"]![0]!.AsObject();
        alert["endsAt"] = null;
        alert["generatorURL"] = null;
        alert["labels"]!["empty"] = null;
        alert["extra"] = 42;

        await Send(body.ToJsonString());

        await Eventually.True(() => Slack.Posts.Count == 1, "processed and posted");
    }

    [Theory]
    [InlineData("labels", "{\"severity\": 5}", "labels.severity")]
    [InlineData("annotations", "[\"x\"]", "annotations")]
    [InlineData("endsAt", "\"soon\"", "endsAt")]
    [InlineData("fingerprint", "12", "fingerprint")]
    public async Task Wrongly_typed_alert_fields_are_400(string field, string json, string named)
    {
        var body = Build("g-typed", "b25-critical", Firing("t1"));
        body["alerts"]![0]![field] = JsonNode.Parse(json);

        var response = await Client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(body.ToJsonString()));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(named, (await response.Content.ReadFromJsonAsync<JsonObject>())!["detail"]!.GetValue<string>());
    }
}
