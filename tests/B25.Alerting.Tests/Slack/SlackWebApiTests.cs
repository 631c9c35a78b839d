using System.Net;
using System.Net.Sockets;
using B25.Alerting.Delivery.Slack;
using B25.Alerting.Observability;
using B25.Alerting.Tests.Support;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Tests.Slack;

/// <summary>The Web API client against the Slack stand-in: posting with metadata, finding a post again, resolving channels, and what each failure means.</summary>
[Collection(B25.Alerting.Tests.Observability.ProcessWideMetrics.Name)] // counts Slack auth failures exactly
public sealed class SlackWebApiTests : IDisposable
{
    private const string EventType = "b25_incident_message";
    private static readonly DateTimeOffset LongAgo = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);

    private readonly SlackStandIn _slack = new();
    private readonly List<HttpClient> _clients = [];

    private SlackWebApi Api(TimeSpan? timeout = null, string? baseUrl = null)
    {
        // As the typed client is configured in AlertingServiceExtensions.
        var http = new HttpClient { BaseAddress = new Uri(baseUrl ?? _slack.ApiBaseUrl), Timeout = timeout ?? TimeSpan.FromSeconds(10) };
        _clients.Add(http);
        return new SlackWebApi(http, Options.Create(new SlackOptions { BotToken = "xoxb-test", ApiBaseUrl = baseUrl ?? _slack.ApiBaseUrl }));
    }

    private static SlackMessageMetadata Metadata(string incident, string kind = "post") =>
        new(EventType, new Dictionary<string, string> { ["incident"] = incident, ["kind"] = kind });

    private static Dictionary<string, string> Payload(string incident, string kind = "post") => new() { ["incident"] = incident, ["kind"] = kind };

    [Fact]
    public async Task A_post_carries_its_metadata()
    {
        var result = await Api().PostMessageAsync("#trading-alerts", "hello", null, null, Metadata("inc-1"), CancellationToken.None);

        Assert.Equal(SlackCallStatus.Ok, result.Status);
        Assert.Equal("CTRADING-ALERTS", result.Channel);
        var metadata = Assert.Single(_slack.Posts).Metadata!;
        Assert.Equal(EventType, metadata["event_type"]!.GetValue<string>());
        Assert.Equal("inc-1", metadata["event_payload"]!["incident"]!.GetValue<string>());
        Assert.Equal("post", metadata["event_payload"]!["kind"]!.GetValue<string>());
        Assert.Equal("Bearer xoxb-test", _slack.Posts[0].Authorization);
        Assert.Equal(result.Ts, Assert.Single(_slack.Messages).Ts);
    }

    [Fact]
    public async Task A_post_without_metadata_sends_none()
    {
        await Api().PostMessageAsync("#trading-alerts", "hello", null, null, null, CancellationToken.None);

        Assert.False(Assert.Single(_slack.Posts).Body.ContainsKey("metadata"));
    }

    [Fact]
    public async Task A_message_is_found_by_its_metadata_across_pages()
    {
        _slack.PageSize = 2;
        var api = Api();
        var posted = new List<string>();
        for (var i = 1; i <= 7; i++)
            posted.Add((await api.PostMessageAsync("#trading-alerts", $"incident {i}", null, null, Metadata($"inc-{i}"), CancellationToken.None)).Ts!);

        // History is newest first: inc-2 is on the 3rd page of 2.
        var found = await api.FindMessageAsync("CTRADING-ALERTS", null, LongAgo, EventType, Payload("inc-2"), CancellationToken.None);

        Assert.Equal(SlackCallStatus.Ok, found.Status);
        Assert.Equal(posted[1], found.Ts);
        var reads = _slack.Reads.Where(r => r.Method == "conversations.history").ToList();
        Assert.True(reads.Count >= 3, $"{reads.Count} pages read");
        Assert.All(reads, r => Assert.Equal("true", r.Body["include_all_metadata"]!.GetValue<string>()));
        Assert.All(reads, r => Assert.Equal("Bearer xoxb-test", r.Authorization));
    }

    [Fact]
    public async Task Every_pair_of_the_payload_must_match()
    {
        var api = Api();
        await api.PostMessageAsync("#trading-alerts", "a", null, null, Metadata("inc-1", kind: "post"), CancellationToken.None);

        var found = await api.FindMessageAsync("CTRADING-ALERTS", null, LongAgo, EventType, Payload("inc-1", kind: "other"), CancellationToken.None);
        var otherType = await api.FindMessageAsync("CTRADING-ALERTS", null, LongAgo, "other_event", Payload("inc-1"), CancellationToken.None);

        Assert.Equal(new SlackFindResult(SlackCallStatus.Ok), found);
        Assert.Equal(new SlackFindResult(SlackCallStatus.Ok), otherType);
    }

    [Fact]
    public async Task Of_several_matches_the_oldest_is_found()
    {
        _slack.PageSize = 1;
        var api = Api();
        var first = await api.PostMessageAsync("#trading-alerts", "a", null, null, Metadata("inc-1"), CancellationToken.None);
        await api.PostMessageAsync("#trading-alerts", "b", null, null, Metadata("inc-1"), CancellationToken.None);

        var found = await api.FindMessageAsync("CTRADING-ALERTS", null, LongAgo, EventType, Payload("inc-1"), CancellationToken.None);

        Assert.Equal(first.Ts, found.Ts);
    }

    [Fact]
    public async Task A_reply_is_found_in_its_thread()
    {
        var api = Api();
        var parent = await api.PostMessageAsync("#trading-alerts", "incident", null, null, Metadata("inc-1"), CancellationToken.None);
        var reply = await api.PostMessageAsync("CTRADING-ALERTS", "changed", null, parent.Ts, Metadata("inc-1", kind: "reply-3"), CancellationToken.None);

        var inThread = await api.FindMessageAsync("CTRADING-ALERTS", parent.Ts, LongAgo, EventType, Payload("inc-1", kind: "reply-3"), CancellationToken.None);
        var inChannel = await api.FindMessageAsync("CTRADING-ALERTS", null, LongAgo, EventType, Payload("inc-1", kind: "reply-3"), CancellationToken.None);

        Assert.Equal(reply.Ts, inThread.Ts);
        Assert.Null(inChannel.Ts); // replies are not in the channel's history
        Assert.Contains(_slack.Reads, r => r.Method == "conversations.replies" && r.Body["ts"]!.GetValue<string>() == parent.Ts);
        Assert.Equal([false, true], _slack.Messages.Select(m => m.IsReply));
    }

    [Fact]
    public async Task Not_found_is_ok_without_a_ts()
    {
        var api = Api();
        var posted = await api.PostMessageAsync("#trading-alerts", "a", null, null, Metadata("inc-1"), CancellationToken.None);

        var otherIncident = await api.FindMessageAsync("CTRADING-ALERTS", null, LongAgo, EventType, Payload("inc-9"), CancellationToken.None);
        // Only messages since "oldest" are searched.
        var after = DateTimeOffset.FromUnixTimeMilliseconds((long)(decimal.Parse(posted.Ts!, System.Globalization.CultureInfo.InvariantCulture) * 1000) + 1);
        var tooOld = await api.FindMessageAsync("CTRADING-ALERTS", null, after, EventType, Payload("inc-1"), CancellationToken.None);

        Assert.Equal(new SlackFindResult(SlackCallStatus.Ok), otherIncident);
        Assert.Equal(new SlackFindResult(SlackCallStatus.Ok), tooOld);
    }

    [Fact]
    public async Task Missing_scope_is_permanent()
    {
        var api = Api();
        var posted = await api.PostMessageAsync("#trading-alerts", "a", null, null, Metadata("inc-1"), CancellationToken.None);
        _slack.FailHistory("missing_scope");

        var history = await api.FindMessageAsync("CTRADING-ALERTS", null, LongAgo, EventType, Payload("inc-1"), CancellationToken.None);
        var replies = await api.FindMessageAsync("CTRADING-ALERTS", posted.Ts, LongAgo, EventType, Payload("inc-1"), CancellationToken.None);

        Assert.Equal(new SlackFindResult(SlackCallStatus.Permanent, Error: "missing_scope"), history);
        Assert.Equal(new SlackFindResult(SlackCallStatus.Permanent, Error: "missing_scope"), replies);
    }

    [Fact]
    public async Task An_unknown_channel_is_permanent_and_ratelimited_is_transient()
    {
        var api = Api();

        var unknown = await api.FindMessageAsync("CNOWHERE", null, LongAgo, EventType, Payload("inc-1"), CancellationToken.None);
        _slack.FailHistory("ratelimited");
        var limited = await api.FindMessageAsync("CNOWHERE", null, LongAgo, EventType, Payload("inc-1"), CancellationToken.None);

        Assert.Equal(new SlackFindResult(SlackCallStatus.Permanent, Error: "channel_not_found"), unknown);
        Assert.Equal(SlackCallStatus.Transient, limited.Status);
    }

    [Fact]
    public async Task A_post_that_times_out_is_unknown_and_the_message_is_in_slack()
    {
        _slack.Slow(TimeSpan.FromSeconds(2), c => c.Method == "chat.postMessage");
        var api = Api(timeout: TimeSpan.FromMilliseconds(500));

        var result = await api.PostMessageAsync("#trading-alerts", "hello", null, null, Metadata("inc-1"), CancellationToken.None);

        Assert.Equal(SlackCallStatus.Unknown, result.Status);
        Assert.Equal("timeout", result.Error);
        var message = Assert.Single(_slack.Messages);
        Assert.Equal("hello", message.Text);
        // ... and reconciliation finds it.
        var found = await api.FindMessageAsync("CTRADING-ALERTS", null, LongAgo, EventType, Payload("inc-1"), CancellationToken.None);
        Assert.Equal(message.Ts, found.Ts);
    }

    [Fact]
    public async Task An_edit_that_times_out_is_transient()
    {
        var posted = await Api().PostMessageAsync("#trading-alerts", "hello", null, null, null, CancellationToken.None);
        _slack.Slow(TimeSpan.FromSeconds(2), c => c.Method == "chat.update");

        var result = await Api(timeout: TimeSpan.FromMilliseconds(500)).UpdateAsync(posted.Channel!, posted.Ts!, "edited", null, CancellationToken.None);

        Assert.Equal(SlackCallStatus.Transient, result.Status);
        Assert.Equal("timeout", result.Error);
    }

    [Fact]
    public async Task A_5xx_to_a_post_is_unknown_a_429_transient_with_its_retry_after()
    {
        var api = Api();
        _slack.Respond(_ => (503, "down", null));
        var down = await api.PostMessageAsync("#trading-alerts", "a", null, null, Metadata("inc-1"), CancellationToken.None);
        _slack.Respond(_ => (429, "", 7));
        var limited = await api.PostMessageAsync("#trading-alerts", "a", null, null, Metadata("inc-1"), CancellationToken.None);
        _slack.Respond(_ => (200, """{"ok":false,"error":"channel_not_found"}""", null));
        var refused = await api.PostMessageAsync("#trading-alerts", "a", null, null, Metadata("inc-1"), CancellationToken.None);

        Assert.Equal(new SlackCallResult(SlackCallStatus.Unknown, Error: "HTTP 503"), down);
        Assert.Equal(new SlackCallResult(SlackCallStatus.Transient, Error: "HTTP 429", RetryAfter: TimeSpan.FromSeconds(7)), limited);
        Assert.Equal(new SlackCallResult(SlackCallStatus.Permanent, Error: "channel_not_found"), refused);
    }

    // The counter is process-wide: these tests compare it before and after, and nothing else in this
    // assembly makes Slack answer an authentication error.
    [Theory]
    [InlineData("invalid_auth")]
    [InlineData("not_authed")]
    [InlineData("account_inactive")]
    [InlineData("token_revoked")]
    [InlineData("token_expired")]
    public async Task A_token_slack_refuses_is_counted_as_an_auth_failure(string error)
    {
        var api = Api();
        _slack.Respond(_ => (200, $$"""{"ok":false,"error":"{{error}}"}""", null));
        var before = AlertingMetrics.SlackAuthFailures.Value;

        var result = await api.PostMessageAsync("#trading-alerts", "a", null, null, Metadata("inc-1"), CancellationToken.None);

        Assert.Equal(new SlackCallResult(SlackCallStatus.Permanent, Error: error), result);
        Assert.Equal(before + 1, AlertingMetrics.SlackAuthFailures.Value);
    }

    [Fact]
    public async Task Invalid_auth_is_counted_on_edits_and_searches_too_other_refusals_are_not()
    {
        var api = Api();
        var before = AlertingMetrics.SlackAuthFailures.Value;

        _slack.Respond(_ => (200, """{"ok":false,"error":"invalid_auth"}""", null));
        var edit = await api.UpdateAsync("CTRADING-ALERTS", "1732540000.000101", "edited", null, CancellationToken.None);
        _slack.FailHistory("invalid_auth");
        var search = await api.FindMessageAsync("CTRADING-ALERTS", null, LongAgo, EventType, Payload("inc-1"), CancellationToken.None);
        var afterAuth = AlertingMetrics.SlackAuthFailures.Value;
        _slack.Respond(_ => (200, """{"ok":false,"error":"channel_not_found"}""", null));
        _slack.FailHistory("missing_scope");
        await api.PostMessageAsync("#trading-alerts", "a", null, null, Metadata("inc-1"), CancellationToken.None);
        await api.FindMessageAsync("CTRADING-ALERTS", null, LongAgo, EventType, Payload("inc-1"), CancellationToken.None);

        Assert.Equal(new SlackCallResult(SlackCallStatus.Permanent, Error: "invalid_auth"), edit);
        Assert.Equal(new SlackFindResult(SlackCallStatus.Permanent, Error: "invalid_auth"), search);
        Assert.Equal(before + 2, afterAuth);
        Assert.Equal(afterAuth, AlertingMetrics.SlackAuthFailures.Value);
    }

    [Fact]
    public async Task A_5xx_to_an_edit_is_transient()
    {
        _slack.Respond(_ => (500, "boom", null));

        var result = await Api().UpdateAsync("CTRADING-ALERTS", "1732540000.000101", "edited", null, CancellationToken.None);

        Assert.Equal(SlackCallStatus.Transient, result.Status);
    }

    [Fact]
    public async Task A_refused_connection_is_transient()
    {
        var api = Api(baseUrl: $"http://127.0.0.1:{ClosedPort()}/api/");

        var post = await api.PostMessageAsync("#trading-alerts", "a", null, null, Metadata("inc-1"), CancellationToken.None);
        var find = await api.FindMessageAsync("CTRADING-ALERTS", null, LongAgo, EventType, Payload("inc-1"), CancellationToken.None);
        var resolve = await api.ResolveChannelAsync("#trading-alerts", CancellationToken.None);

        Assert.Equal(SlackCallStatus.Transient, post.Status);
        Assert.Contains("ConnectionError", post.Error);
        Assert.Equal(SlackCallStatus.Transient, find.Status);
        Assert.Equal(SlackCallStatus.Transient, resolve.Status);
    }

    [Fact]
    public async Task A_connection_lost_after_the_post_was_sent_is_unknown()
    {
        // A server that reads the request and hangs up without answering.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var server = Task.Run(async () =>
        {
            using var socket = await listener.AcceptSocketAsync();
            await socket.ReceiveAsync(new byte[16 * 1024], SocketFlags.None);
            socket.Close();
        });
        var api = Api(baseUrl: $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/api/");

        var post = await api.PostMessageAsync("#trading-alerts", "a", null, null, Metadata("inc-1"), CancellationToken.None);
        await server;

        Assert.Equal(SlackCallStatus.Unknown, post.Status);
    }

    [Fact]
    public async Task A_channel_name_is_resolved_across_pages()
    {
        _slack.PageSize = 2;
        _slack.AddChannels("#alpha", "#bravo", "#charlie", "#delta", "#echo", "#zulu");
        var api = Api();

        var byHash = await api.ResolveChannelAsync("#zulu", CancellationToken.None);
        var byName = await api.ResolveChannelAsync("echo", CancellationToken.None);
        var missing = await api.ResolveChannelAsync("#nowhere", CancellationToken.None);

        Assert.Equal(new SlackChannelResult(SlackCallStatus.Ok, "CZULU"), byHash);
        Assert.Equal(new SlackChannelResult(SlackCallStatus.Ok, "CECHO"), byName);
        Assert.Equal(new SlackChannelResult(SlackCallStatus.Ok), missing);
        var lists = _slack.Reads.Where(r => r.Method == "conversations.list").ToList();
        Assert.True(lists.Count >= 3 + 3 + 3, $"{lists.Count} pages read");
        Assert.All(lists, r => Assert.Equal("public_channel,private_channel", r.Body["types"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_channel_id_is_returned_as_it_is()
    {
        var result = await Api().ResolveChannelAsync("C0123ABCD", CancellationToken.None);

        Assert.Equal(new SlackChannelResult(SlackCallStatus.Ok, "C0123ABCD"), result);
        Assert.Empty(_slack.Reads);
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public void Dispose()
    {
        foreach (var client in _clients) client.Dispose();
        _slack.Dispose();
    }
}
