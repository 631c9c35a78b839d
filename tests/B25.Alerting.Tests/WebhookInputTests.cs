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
        await using var connection = await _factory.OpenStorageAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT (SELECT COUNT(*) FROM notifications) + (SELECT COUNT(*) FROM incidents) + (SELECT COUNT(*) FROM deliveries)";
        Assert.Equal(0L, (long)(await command.ExecuteScalarAsync())!);
        await _factory.SettledAsync();
        Assert.Empty(_slack.Calls); // nothing sent to Slack
    }

    private Task<HttpResponseMessage> Post(string body, string? token = AlertingFactory.Token, string contentType = "application/json")
    {
        var client = _factory.CreateClient();
        if (token is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client.PostAsync("/webhooks/alertmanager", new StringContent(body, Encoding.UTF8, contentType));
    }

    private Task<HttpResponseMessage> PostBytes(byte[] body)
    {
        var client = _factory.Authorized();
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return client.PostAsync("/webhooks/alertmanager", content);
    }

    /// <summary>A valid body with "MARK" put where the case says, then replaced by raw bytes.</summary>
    private static byte[] WithMark(string where, byte[] replacement)
    {
        var json = Mutate(b =>
        {
            var alert = b["alerts"]![0]!.AsObject();
            switch (where)
            {
                case "receiver": b["receiver"] = "MARK"; break;
                case "externalURL": b["externalURL"] = "MARK"; break;
                case "fingerprint": alert["fingerprint"] = "MARK"; break;
                case "generatorURL": alert["generatorURL"] = "MARK"; break;
                case "label value": alert["labels"]!["instance"] = "MARK"; break;
                case "label key": alert["labels"]!["MARK"] = "x"; break;
                case "annotation value": alert["annotations"]!["summary"] = "MARK"; break;
                case "commonLabels value": b["commonLabels"]!["severity"] = "MARK"; break;
                case "unknown field name": b["MARK"] = 1; break;
                default: throw new ArgumentException(where);
            }
        });
        var bytes = Encoding.UTF8.GetBytes(json).ToList();
        var mark = Encoding.UTF8.GetBytes("MARK");
        var at = Enumerable.Range(0, bytes.Count - mark.Length).Single(i => bytes.Skip(i).Take(mark.Length).SequenceEqual(mark));
        bytes.RemoveRange(at, mark.Length);
        bytes.InsertRange(at, replacement);
        return bytes.ToArray();
    }

    [Theory]
    [InlineData("receiver", "receiver: invalid UTF-8")]
    [InlineData("externalURL", "externalURL: invalid UTF-8")]
    [InlineData("fingerprint", "alerts[0].fingerprint: invalid UTF-8")]
    [InlineData("generatorURL", "alerts[0].generatorURL: invalid UTF-8")]
    [InlineData("label value", "alerts[0].labels.instance: invalid UTF-8")]
    [InlineData("label key", "alerts[0].labels (a property name): invalid UTF-8")]
    [InlineData("annotation value", "alerts[0].annotations.summary: invalid UTF-8")]
    [InlineData("commonLabels value", "commonLabels.severity: invalid UTF-8")]
    [InlineData("unknown field name", "a property name: invalid UTF-8")]
    public async Task Invalid_utf8_anywhere_is_400_naming_where(string where, string named)
    {
        // 0xC3 0x28: a two-byte lead followed by '(' instead of a continuation byte.
        var problem = await AssertRejected(await PostBytes(WithMark(where, [0x61, 0xC3, 0x28])), HttpStatusCode.BadRequest, named);
        Assert.Contains("byte offset", problem["detail"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("label value", "\\udc00", "alerts[0].labels.instance: an escape that is not valid UTF-16")]
    [InlineData("label key", "\\ud800", "alerts[0].labels (a property name): an escape that is not valid UTF-16")]
    [InlineData("fingerprint", "x\\ud800\\ud800", "alerts[0].fingerprint: an escape that is not valid UTF-16")]
    [InlineData("receiver", "\\ud83d", "receiver: an escape that is not valid UTF-16")]
    [InlineData("unknown field name", "\\udfff", "a property name: an escape that is not valid UTF-16")]
    public async Task Escaped_lone_surrogate_is_400_naming_where(string where, string escape, string named) =>
        await AssertRejected(await PostBytes(WithMark(where, Encoding.UTF8.GetBytes(escape))), HttpStatusCode.BadRequest, named);

    [Fact]
    public async Task Escaped_surrogate_pair_is_accepted()
    {
        var response = await PostBytes(WithMark("label value", Encoding.UTF8.GetBytes("\\ud83d\\ude00 \\u0026")));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await Eventually.True(() => _slack.Posts.Count == 1, "processed and posted");
    }

    [Fact]
    public async Task Ends_at_the_serializer_cannot_bind_is_400() =>
        // JsonDocument holds it as a string; DateTimeOffset cannot be before year 1 in UTC.
        await AssertRejected(await Post(Mutate(b => b["alerts"]![0]!["endsAt"] = "0001-01-01T00:00:00+01:00")), HttpStatusCode.BadRequest, "endsAt");

    [Fact]
    public async Task Truncated_alerts_as_a_string_is_400_not_500() =>
        await AssertRejected(await Post(Mutate(b => b["truncatedAlerts"] = "5")), HttpStatusCode.BadRequest, "truncatedAlerts");

    [Fact]
    public async Task Repeated_starts_at_is_400() =>
        // The serializer converts every copy of a field (keeping the last), so an invalid first copy would fail it.
        await AssertRejected(await Post(Mutate(b => { }).Replace("\"startsAt\":", "\"startsAt\":\"soon\",\"startsAt\":")),
            HttpStatusCode.BadRequest, "alerts[0]: 'startsAt' appears more than once");

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

    [SqliteFact]
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
        // Correctness, not speed (the bench measures that): applying 20,000 alerts takes seconds on a quiet machine and
        // tens of seconds on a loaded one.
        await Eventually.True(() => _slack.Posts.Count == 1, "one post for the whole group", 120_000);
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
