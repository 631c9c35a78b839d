using System.Net;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using B25.Alerting.Tests.Support;
using Microsoft.Extensions.Options;
using MimeKit;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.Email;

/// <summary>The email channel through the real service, MailKit and a real SMTP server on 127.0.0.1.</summary>
public sealed class EmailDeliveryTests : IDisposable
{
    private static readonly string[] DefaultRecipients = ["oncall@b25.test", "trading-desk@b25.test"];

    private readonly SlackStandIn _slack = new();
    private readonly SmtpStandIn _smtp = new();
    private readonly AlertingFactory _factory;
    private readonly HttpClient _client;

    public EmailDeliveryTests()
    {
        _factory = new AlertingFactory(_slack, _smtp.Settings(DefaultRecipients));
        _client = _factory.Authorized();
    }

    public void Dispose()
    {
        _client.Dispose();
        _factory.Dispose();
        _smtp.Dispose();
        _slack.Dispose();
    }

    [Fact]
    public async Task Critical_firing_sends_one_mail_to_the_default_recipients_with_text_and_html()
    {
        await Send(Body("g1", Service(Firing("a1")), Service(Firing("a2"))));

        await Eventually.True(() => _smtp.Mails.Count == 1, "one mail");
        var mail = _smtp.Mails[0];
        // The first line says what tells the alerts apart (here only their instance).
        Assert.Equal("[FIRING:2] HighErrorRate order-execution (instance a1, a2) (critical)", mail.Subject);
        Assert.Equal("\"B25 Alerting\" <alerts@b25.test>", mail.Message.From.ToString());
        Assert.Equal(DefaultRecipients, mail.Message.To.Mailboxes.Select(m => m.Address));
        Assert.Equal(DefaultRecipients, mail.EnvelopeTo);
        Assert.Matches("^[0-9a-f]{24}\\.opened@b25\\.test$", mail.Message.MessageId);
        Assert.Null(mail.Message.InReplyTo);
        Assert.Equal("auto-generated", mail.Message.Headers["Auto-Submitted"]);

        var alternative = Assert.IsType<MultipartAlternative>(mail.Message.Body);
        Assert.Equal(["text/plain", "text/html"], alternative.Select(p => p.ContentType.MimeType));
        Assert.Contains("FIRING: HighErrorRate order-execution (instance a1, a2) (critical)", mail.Text);
        Assert.Contains("HighErrorRate on a2", mail.Text);
        Assert.Contains("http://alerting.test/runbooks/HighErrorRate", mail.Text);
        Assert.Contains("<a href=\"http://alerting.test/runbooks/HighErrorRate\">Runbook</a>", mail.Html);

        // Email is an extra channel: Slack still gets its message.
        await Eventually.True(() => _slack.Posts.Count == 1, "one Slack post");
        await _factory.SettledAsync();
        Assert.Single(_smtp.Mails); // nothing else is mailed
    }

    [Fact]
    public async Task Route_mailboxes_each_get_their_own_mail_and_warning_routes_send_none()
    {
        await using var factory = new AlertingFactory(_slack, Merge(_smtp.Settings(DefaultRecipients), new()
        {
            ["Routing:Routes:0:Name"] = "critical",
            ["Routing:Routes:0:Matchers:0"] = "severity=\"critical\"",
            ["Routing:Routes:0:Email:To:0"] = "desk@b25.test",
            ["Routing:Routes:0:Email:To:1"] = "cto@b25.test",
            // Configuration overlays the shipped first route (emergency-stop) key by key: switch off what it adds.
            ["Routing:Routes:0:Continue"] = "false",
            ["Routing:Routes:0:RiskManager:EmergencyStop"] = "false",
        }));
        using var client = factory.Authorized();

        await Send(client, Body("g1", Firing("a1")));
        await Send(client, Body("g2", Firing("w1", severity: "warning")));

        await Eventually.True(() => _smtp.Mails.Count == 2, "one mail per mailbox");
        Assert.Equal(["cto@b25.test", "desk@b25.test"], _smtp.Mails.SelectMany(m => m.EnvelopeTo).Order());
        Assert.All(_smtp.Mails, m => Assert.Single(m.Message.To.Mailboxes));
        await factory.SettledAsync();
        Assert.Equal(2, _smtp.Mails.Count); // the warning incident mails nobody
    }

    [Fact]
    public async Task Duplicate_and_repeat_notifications_send_no_mail()
    {
        var body = Body("g1", Firing("a1"));
        await Send(body);
        await Eventually.True(() => _smtp.Mails.Count == 1, "first mail");

        await Send(body);
        var repeat = Build("g1", "b25-critical", Firing("a1") with { Annotations = new() { ["summary"] = "value now 0.42" } });
        await Send(repeat.ToJsonString());

        await _factory.SettledAsync();
        Assert.Single(_smtp.Mails); // duplicates and repeats mail nothing
    }

    [Fact]
    public async Task Joining_alert_and_partial_resolve_send_no_mail()
    {
        await Send(Body("g1", Firing("a1")));
        await Eventually.True(() => _smtp.Mails.Count == 1, "first mail");

        await Send(Body("g1", Firing("a1"), Firing("a2")));
        await Eventually.True(() => _slack.Updates.Count == 1, "Slack saw the join");
        await Send(Body("g1", Resolved("a1"), Firing("a2")));
        await Eventually.True(() => _slack.Updates.Count == 2, "Slack saw the partial resolve");

        await _factory.SettledAsync();
        Assert.Single(_smtp.Mails); // changes mail nothing
    }

    [Fact]
    public async Task All_resolved_sends_one_resolved_mail_threaded_to_the_first()
    {
        await Send(Body("g1", Service(Firing("a1")), Service(Firing("a2"))));
        await Eventually.True(() => _smtp.Mails.Count == 1, "opened mail");
        await Send(Body("g1", Service(Resolved("a1")), Service(Firing("a2"))));
        await Send(Body("g1", Service(Resolved("a1")), Service(Resolved("a2"))));

        await Eventually.True(() => _smtp.Mails.Count == 2, "resolved mail");
        var (opened, closed) = (_smtp.Mails[0].Message, _smtp.Mails[1].Message);
        // From the alerts' startsAt to their endsAt (5 minutes apart), not from when the service heard of them.
        Assert.Equal("[RESOLVED] HighErrorRate order-execution after 5m", closed.Subject);
        Assert.EndsWith(".closed@b25.test", closed.MessageId);
        Assert.Equal(opened.MessageId, closed.InReplyTo);
        Assert.Equal(opened.MessageId, Assert.Single(closed.References));
        Assert.Equal(DefaultRecipients, closed.To.Mailboxes.Select(m => m.Address));
        Assert.Contains("RESOLVED: HighErrorRate order-execution (critical)", closed.TextBody);
        Assert.DoesNotContain("only mail", closed.TextBody);
        Assert.IsType<MultipartAlternative>(closed.Body);
        await _factory.SettledAsync();
        Assert.Equal(2, _smtp.Mails.Count); // nothing more
    }

    [Fact]
    public async Task Alert_data_is_escaped_in_the_html_part_and_never_run_as_template()
    {
        var alert = Firing("a1") with
        {
            Annotations = new()
            {
                ["summary"] = "<script>alert('x')</script> {{ 6 * 7 }}",
                ["runbook_url"] = "javascript:alert(1)",
                ["description"] = "\"><img src=x onerror=alert(1)>",
            },
        };
        await Send(Body("g1", alert));

        await Eventually.True(() => _smtp.Mails.Count == 1, "one mail");
        var mail = _smtp.Mails[0];
        Assert.DoesNotContain("<script>", mail.Html);
        Assert.DoesNotContain("<img", mail.Html);
        Assert.DoesNotContain("javascript:", mail.Html);
        Assert.Contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;", mail.Html);
        Assert.Contains("{{ 6 * 7 }}", mail.Html);
        Assert.DoesNotContain("</script> 42", mail.Text); // {{ 6 * 7 }} evaluated; not any "42": the mail carries the time
        Assert.Contains("<script>alert('x')</script> {{ 6 * 7 }}", mail.Text);
    }

    [Fact]
    public async Task Transient_4xx_reply_is_retried_and_one_mail_arrives()
    {
        _smtp.Reply(attempt => attempt == 1 ? 451 : null);

        await Send(Body("g1", Firing("a1")));

        await Eventually.True(() => _smtp.Mails.Count == 1, "mail after the retry");
        Assert.Equal([451], _smtp.Refused);
        await Eventually.True(async () => (await EmailDeliveriesAsync()) is [{ Status: "sent", Attempts: 2 }], "recorded as sent at the second attempt");
        await _factory.SettledAsync();
        Assert.Single(_smtp.Mails); // exactly one mail
    }

    [Fact]
    public async Task Permanent_5xx_reply_fails_the_delivery_without_retry()
    {
        _smtp.Reply(_ => 550);

        await Send(Body("g1", Firing("a1")));

        await Eventually.True(async () => (await EmailDeliveriesAsync()) is [{ Status: "failed" }], "delivery failed");
        var delivery = await EmailDeliveryAsync();
        Assert.Contains("550", delivery.LastError);
        // RetryAfter is 0.3 s in these tests: a retry would have reached the server by now.
        await _factory.SettledAsync();
        Assert.Single(_smtp.Refused); // not retried
        Assert.Empty(_smtp.Mails);
    }

    [Fact]
    public async Task Relay_unreachable_keeps_the_mail_queued_until_it_answers()
    {
        var port = SmtpStandIn.FreePort();
        var settings = _smtp.Settings(DefaultRecipients);
        settings["Smtp:Port"] = port.ToString();
        await using var factory = new AlertingFactory(_slack, settings);
        using var client = factory.Authorized();

        await Send(client, Body("g1", Firing("a1")));
        await Eventually.True(async () => (await EmailDeliveriesAsync(factory)) is [{ Status: "pending", Attempts: >= 1 } d] && d.LastError.Contains("connection"),
            "connection refused is transient");

        using var relay = new SmtpStandIn(port);
        await Eventually.True(() => relay.Mails.Count == 1, "mail once the relay answers", timeoutMs: 20_000);
        await Eventually.True(async () => (await EmailDeliveriesAsync(factory)) is [{ Status: "sent" }], "recorded as sent");
    }

    [Fact]
    public async Task Relay_refusing_mail_for_the_whole_incident_gives_one_closed_mail_that_tells_the_whole_story()
    {
        // The relay comes back only after refusing an attempt made once the closed delivery was queued: an attempt of the
        // opened mail alone that was already under way then (a retry on a busy machine) is refused too, and the next attempt,
        // a retry after its backoff, carries both.
        var down = true;
        var closedQueued = false;
        _smtp.Reply(_ =>
        {
            if (!Volatile.Read(ref down)) return null;
            if (Volatile.Read(ref closedQueued)) Volatile.Write(ref down, false);
            return 451;
        });

        await Send(Body("g1", Firing("a1")));
        await Eventually.True(() => _smtp.Refused.Count >= 1, "the opened mail was tried");
        await Send(Body("g1", Resolved("a1")));
        await Eventually.True(async () => (await EmailDeliveriesAsync()).Count == 2, "closed delivery queued");
        Volatile.Write(ref closedQueued, true);

        await Eventually.True(() => _smtp.Mails.Count == 1, "one mail");
        var mail = _smtp.Mails[0].Message;
        Assert.StartsWith("[RESOLVED] HighErrorRate", mail.Subject);
        Assert.Null(mail.InReplyTo);
        Assert.Contains("only mail about it", mail.TextBody);
        await Eventually.True(async () => (await EmailDeliveriesAsync()).Select(d => d.Status).Order().SequenceEqual(["merged", "sent"]),
            "opened merged into the closed mail");
        await _factory.SettledAsync();
        Assert.Single(_smtp.Mails); // no late FIRING mail
    }

    [Fact]
    public async Task Smtp_host_empty_turns_email_off_and_slack_still_works()
    {
        await using var factory = new AlertingFactory(_slack, new() { ["Smtp:From"] = "alerts@b25.test", ["Smtp:To:0"] = "oncall@b25.test" });
        using var client = factory.Authorized();

        await Send(client, Body("g1", Firing("a1")));

        await Eventually.True(() => _slack.Posts.Count == 1, "Slack post");
        await using var connection = await factory.OpenStorageAsync();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM deliveries WHERE channel = 'email'";
        Assert.Equal(0L, (long)(await command.ExecuteScalarAsync())!);
        Assert.Empty(_smtp.Mails);
    }

    [Fact]
    public void Default_recipients_missing_while_a_route_names_them_fails_the_start()
    {
        using var factory = new AlertingFactory(_slack, _smtp.Settings());

        Assert.Contains("Smtp:To", Refusal(factory));
    }

    [Fact]
    public void Bad_smtp_settings_fail_the_start()
    {
        using var factory = new AlertingFactory(_slack, Merge(_smtp.Settings(DefaultRecipients), new() { ["Smtp:From"] = "not an address", ["Smtp:Port"] = "0" }));

        Assert.Contains("Smtp:Port=0: expected 1 to 65535", Refusal(factory));
    }

    /// <summary>The one Critical line of a refused start (the process then exits 1: tests/Hosting/StartTests).</summary>
    private static string Refusal(AlertingFactory factory)
    {
        using var logs = new B25.Alerting.Tests.Runbooks.LogCapture();
        using var service = factory.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(logs)));
        Assert.ThrowsAny<Exception>(() => service.CreateClient());
        return Assert.Single(logs.Lines, l => l.Level == Microsoft.Extensions.Logging.LogLevel.Critical).Message;
    }

    private static Alert Service(Alert alert) =>
        alert with { Labels = new Dictionary<string, string>(alert.Labels!) { ["service"] = "order-execution" } };

    private static Dictionary<string, string?> Merge(Dictionary<string, string?> a, Dictionary<string, string?> b)
    {
        foreach (var (key, value) in b) a[key] = value;
        return a;
    }

    private Task Send(string body) => Send(_client, body);

    private static async Task Send(HttpClient client, string body)
    {
        var response = await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(body));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private async Task<EmailDelivery> EmailDeliveryAsync() => Assert.Single(await EmailDeliveriesAsync());

    private Task<List<EmailDelivery>> EmailDeliveriesAsync() => EmailDeliveriesAsync(_factory);

    private static async Task<List<EmailDelivery>> EmailDeliveriesAsync(AlertingFactory factory)
    {
        await using var connection = await factory.OpenStorageAsync();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT kind, status, attempts, COALESCE(last_error, '') FROM deliveries WHERE channel = 'email' ORDER BY id";
        var list = new List<EmailDelivery>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            list.Add(new EmailDelivery(reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetString(3)));
        return list;
    }

    private sealed record EmailDelivery(string Kind, string Status, long Attempts, string LastError);
}
