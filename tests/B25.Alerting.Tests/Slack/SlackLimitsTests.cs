using System.Net;
using System.Text.Json.Nodes;
using B25.Alerting.Delivery;
using B25.Alerting.Delivery.Slack;
using B25.Alerting.Tests.Support;
using Microsoft.Extensions.Options;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests.Slack;

/// <summary>
/// Slack's limits, checked against what is sent: Block Kit's per-block limits, the characters of all blocks
/// together (msg_blocks_too_long), whole characters at every cut, and the minimal message when Slack still
/// refuses the rich one.
/// </summary>
public sealed class SlackLimitsTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// What Slack counts against msg_blocks_too_long, measured independently of the renderer: every text in
    /// the blocks and about 125 characters per block container (slackapi/bolt-js #2509).
    /// </summary>
    internal static int SlackCount(JsonArray? blocks) => blocks is null ? 0 : blocks.Sum(b => 125 + TextLength(b));

    private static int TextLength(JsonNode? node) => node switch
    {
        JsonObject o => o.Sum(p => p.Key == "text" && p.Value is JsonValue v && v.TryGetValue<string>(out var s) ? s.Length : TextLength(p.Value)),
        JsonArray a => a.Sum(TextLength),
        _ => 0,
    };

    internal static bool HasLoneSurrogate(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) i++;
            else if (char.IsSurrogate(text[i])) return true;
        }
        return false;
    }

    private static IEnumerable<string> AllTexts(JsonNode? node) => node switch
    {
        JsonObject o => o.SelectMany(p => p.Key == "text" && p.Value is JsonValue v && v.TryGetValue<string>(out var s) ? [s] : AllTexts(p.Value)),
        JsonArray a => a.SelectMany(AllTexts),
        _ => [],
    };

    private static SlackRenderer Renderer(int maxAlertsShown = 10) =>
        new(Options.Create(new SlackOptions { MaxAlertsShown = maxAlertsShown }), Options.Create(new TemplateOptions()),
            Presentation.IncidentPresenterTests.Presenter());

    internal static IncidentView Incident(int alerts, string summary = "Order gateway rejects orders", int annotationLength = 0,
        string alertname = "OrderRejects")
    {
        var list = Enumerable.Range(0, alerts).Select(i => new AlertView(
            $"fp{i:D6}", T0.AddSeconds(i).ToString("O"), "firing", null,
            new Dictionary<string, string> { ["alertname"] = alertname, ["severity"] = "critical", ["instance"] = $"gw-{i}:9100", ["symbol"] = $"SYM{i}" },
            new Dictionary<string, string>
            {
                ["summary"] = annotationLength > 0 ? $"Gateway {i}: " + new string('s', annotationLength) : $"Gateway {i} rejects orders",
                ["description"] = annotationLength > 0 ? new string('d', annotationLength * 2) : "",
                ["runbook_url"] = "http://alerting.test/runbooks/OrderRejects",
            },
            $"http://prometheus.test/graph?g0.expr=rejects{i}")).ToList();
        return new IncidentView("inc-1", "b25-critical", "{}:{alertname=\"OrderRejects\"}", "open", 1, T0, null,
            new Dictionary<string, string> { ["alertname"] = alertname },
            new Dictionary<string, string> { ["alertname"] = alertname, ["severity"] = "critical" },
            new Dictionary<string, string> { ["summary"] = summary, ["runbook_url"] = "http://alerting.test/runbooks/OrderRejects" },
            "http://alertmanager.test:9093", alerts, 0, list);
    }

    [Fact]
    public void A_500_alert_incident_renders_under_the_character_budget_and_says_how_many_alerts_were_left_out()
    {
        // 40 alerts shown (the most the setting allows), each section near 2,700 characters: about 110,000 in all.
        var blocks = Renderer(maxAlertsShown: 40).RenderIncident(Incident(500, annotationLength: 500)).Blocks;

        Assert.True(SlackCount(blocks) <= 10_000, $"{SlackCount(blocks)} counted");
        Assert.InRange(blocks.Count, 4, 50);
        Assert.Equal("header", blocks[0]!["type"]!.GetValue<string>());
        Assert.Contains("Order gateway rejects orders", blocks[1]!["text"]!["text"]!.GetValue<string>());
        var shown = blocks.Count(b => b!["type"]!.GetValue<string>() == "section" && b["text"]!["text"]!.GetValue<string>().Contains("Gateway "));
        Assert.InRange(shown, 1, 39);
        var notes = blocks.Where(b => b!["type"]!.GetValue<string>() == "context").Select(b => b!["elements"]![0]!["text"]!.GetValue<string>()).ToList();
        Assert.Contains($"…{40 - shown} more alert(s) left out here to fit Slack's message limits.", notes);
        // The template's own closing line (the alerts beyond MaxAlertsShown) stays last.
        Assert.StartsWith("…and 460 more alert(s)", notes[^1]);
        var note = blocks.Select((b, i) => (b, i)).Single(x => x.b!["type"]!.GetValue<string>() == "context"
            && x.b["elements"]![0]!["text"]!.GetValue<string>().Contains("left out here")).i;
        Assert.Equal("section", blocks[note - 1]!["type"]!.GetValue<string>()); // no divider left dangling
    }

    [Fact]
    public void An_incident_that_fits_is_left_whole()
    {
        var blocks = Renderer().RenderIncident(Incident(3)).Blocks;

        Assert.Equal(3, blocks.Count(b => b!["type"]!.GetValue<string>() == "section" && b["text"]!["text"]!.GetValue<string>().Contains("Gateway ")));
        Assert.DoesNotContain(AllTexts(blocks), t => t.Contains("left out"));
    }

    [Fact]
    public void Blocks_of_any_shape_are_brought_under_the_budget()
    {
        // No alert list to shorten (no divider): the texts themselves are cut, from the last block back.
        var blocks = new JsonArray(
            new JsonObject { ["type"] = "header", ["text"] = new JsonObject { ["type"] = "plain_text", ["text"] = "Big" } },
            Section(new string('a', 2_900)), Section(new string('b', 2_900)), Section(new string('c', 2_900)), Section(new string('d', 2_900)));

        var limited = SlackRenderer.EnforceLimits(blocks);

        Assert.True(SlackCount(limited) <= 10_000, $"{SlackCount(limited)} counted");
        Assert.Equal(5, limited.Count);
        Assert.Equal(2_900, limited[1]!["text"]!["text"]!.GetValue<string>().Length);
        Assert.EndsWith("…", limited[4]!["text"]!["text"]!.GetValue<string>());
    }

    private static JsonObject Section(string text) =>
        new() { ["type"] = "section", ["text"] = new JsonObject { ["type"] = "mrkdwn", ["text"] = text } };

    [Theory]
    [InlineData("🔥")] // a surrogate pair
    [InlineData("👨‍👩‍👧")] // a ZWJ sequence of three pairs
    [InlineData("🇬🇧")] // a flag: two regional indicators
    [InlineData("e\u0301")] // a letter and a combining accent
    public void A_cut_never_splits_a_character(string character)
    {
        for (var offset = 0; offset < character.Length + 2; offset++)
        {
            var value = new string('a', 100 - offset) + string.Concat(Enumerable.Repeat(character, 5));
            foreach (var cut in new[] { SlackText.Truncate(value, 100), TextLimits.Truncate(value, 100) })
            {
                Assert.True(cut.Length <= 100, $"{cut.Length} characters");
                Assert.EndsWith("…", cut);
                Assert.False(HasLoneSurrogate(cut), $"lone surrogate at offset {offset}");
                var body = cut[..^1].TrimStart('a');
                Assert.True(body.Length % character.Length == 0 && body == string.Concat(Enumerable.Repeat(character, body.Length / character.Length)),
                    $"offset {offset}: '{body}' is not whole {character}");
            }
        }
    }

    [Fact]
    public void A_cut_never_ends_inside_a_link_or_an_entity()
    {
        var link = SlackText.Link("http://alerting.test/runbooks/OrderRejects?a=1&b=2", "Runbook");
        var value = new string('x', 90) + link + " tail";
        for (var max = 92; max < 90 + link.Length; max++)
        {
            var cut = SlackText.Truncate(value, max);
            Assert.Equal(new string('x', 90) + "…", cut);
        }

        var escaped = new string('x', 97) + SlackText.Escape("R&D <team>");
        Assert.DoesNotMatch("&[a-z]*…$", SlackText.Truncate(escaped, 100));
        Assert.DoesNotMatch("&[a-z]*…$", SlackText.Truncate(escaped, 101));
    }

    [Fact]
    public void Emoji_at_the_limits_of_header_summary_and_alert_text_stay_whole()
    {
        // The header ("FIRING: " and the title) is cut at 150, an alert's summary at 500, its description at 1,000:
        // each with an emoji across the last character kept.
        var incident = Incident(1, alertname: new string('A', 140) + string.Concat(Enumerable.Repeat("🔥", 20)));
        var alert = incident.Alerts[0];
        incident = incident with
        {
            Alerts =
            [
                alert with
                {
                    Annotations = new Dictionary<string, string>
                    {
                        ["summary"] = new string('s', 498) + string.Concat(Enumerable.Repeat("🚨", 20)),
                        ["description"] = new string('d', 998) + string.Concat(Enumerable.Repeat("📉", 20)),
                    },
                },
            ],
        };

        var message = Renderer().RenderIncident(incident);

        Assert.All(AllTexts(message.Blocks).Append(message.Text), t => Assert.False(HasLoneSurrogate(t), t));
        Assert.DoesNotContain(AllTexts(message.Blocks), t => t.Contains('\uFFFD'));
        Assert.EndsWith("A…", message.Blocks[0]!["text"]!["text"]!.GetValue<string>());
        Assert.Contains(new string('s', 498) + "…", AllTexts(message.Blocks).Single(t => t.Contains("sss")));
        Assert.Contains(new string('d', 998) + "…", AllTexts(message.Blocks).Single(t => t.Contains("ddd")));
    }

    [Fact]
    public void The_minimal_message_names_the_incident_its_state_counts_and_links()
    {
        var message = SlackFallbackMessage.Render(Incident(500, annotationLength: 500), refusedBySlack: true);

        var block = Assert.Single(message.Blocks);
        Assert.Equal("section", block!["type"]!.GetValue<string>());
        Assert.Equal(message.Text, block["text"]!["text"]!.GetValue<string>());
        Assert.StartsWith(":red_circle: *FIRING*: OrderRejects", message.Text);
        Assert.Contains("500 firing, 0 resolved", message.Text);
        Assert.Contains("<http://alertmanager.test:9093/|Alertmanager>", message.Text);
        Assert.Contains("<http://alerting.test/runbooks/OrderRejects|Runbook>", message.Text);
        Assert.True(message.Text.Length <= 1_500, $"{message.Text.Length} characters");
    }
}

/// <summary>The minimal message through the service and a Slack stand-in that refuses the rich one as Slack does.</summary>
[Collection(B25.Alerting.Tests.Observability.ProcessWideMetrics.Name)] // counts the fallback metric exactly
public sealed class SlackFallbackDeliveryTests : IDisposable
{
    private const string TooLong = """{"ok":false,"error":"msg_blocks_too_long"}""";
    private readonly SlackStandIn _slack = new();
    private readonly List<IDisposable> _owned = [];
    private AlertingFactory? _factory;

    public void Dispose()
    {
        foreach (var owned in Enumerable.Reverse(_owned)) owned.Dispose();
        _slack.Dispose();
    }

    private HttpClient Start(Dictionary<string, string?>? settings = null)
    {
        var factory = _factory = new AlertingFactory(_slack, settings);
        var client = factory.Authorized();
        _owned.Add(factory);
        _owned.Add(client);
        return client;
    }

    private static bool IsRich(SlackCall call) => call.Blocks?.Any(b => b?["type"]?.GetValue<string>() == "header") == true;

    private static bool IsPost(SlackCall call) => call.Method == "chat.postMessage" && call.ThreadTs is null;

    private static async Task Send(HttpClient client, string body) =>
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(body))).StatusCode);

    private static async Task<List<JsonObject>> Deliveries(HttpClient client) =>
        JsonNode.Parse(await client.GetStringAsync("/api/incidents?state=open&limit=10"))!.AsArray()
            .Concat(JsonNode.Parse(await client.GetStringAsync("/api/incidents?state=closed&limit=10"))!.AsArray())
            .SelectMany(i => i!["deliveries"]!.AsArray()).Select(d => d!.AsObject())
            .Where(d => d["channel"]!.GetValue<string>() == "slack").ToList();

    private static Task<double> Fallbacks(HttpClient client, string operation) =>
        MetricsText.ReadAsync(client, $"b25_alerting_slack_fallback_total{{operation=\"{operation}\"}}");

    [Fact]
    public async Task A_message_Slack_refuses_as_too_long_is_posted_minimal_and_so_are_its_edits()
    {
        _slack.Respond(c => IsRich(c) ? (200, TooLong, null) : null);
        var client = Start();
        await _factory!.WarmedUpAsync();
        var postsBefore = await Fallbacks(client, "post");
        var updatesBefore = await Fallbacks(client, "update");

        await Send(client, Body("g-big", Firing("a1")));
        await Eventually.True(() => _slack.Posts.Count == 1, "the minimal message is posted");
        var post = _slack.Posts[0];
        Assert.False(IsRich(post));
        Assert.Contains("*FIRING*: HighErrorRate", post.Text);
        Assert.Contains("1 firing, 0 resolved", post.Text);
        // The same metadata as the rich post: an unknown outcome is reconciled the same way.
        Assert.Equal(B25.Alerting.Delivery.Slack.SlackNotifier.PostEvent, post.Metadata!["event_type"]!.GetValue<string>());
        Assert.Single(_slack.Calls, c => IsPost(c) && IsRich(c) && !c.Answered);
        await Eventually.True(async () => (await Deliveries(client)).Any(d => d["kind"]!.GetValue<string>() == "post" && d["status"]!.GetValue<string>() == "sent"),
            "the post is recorded as sent");

        await Send(client, Body("g-big", Firing("a1"), Firing("a2")));
        await Eventually.True(() => _slack.Updates.Count == 1, "the edit goes out minimal");
        Assert.False(IsRich(_slack.Updates[0]));
        Assert.Equal(post.Ts, _slack.Updates[0].MessageTs);
        Assert.Contains("2 firing, 0 resolved", _slack.Updates[0].Text);
        await Eventually.True(() => _slack.Replies.Count == 1, "the thread reply goes out");

        await Send(client, Body("g-big", Resolved("a1"), Resolved("a2")));
        await Eventually.True(() => _slack.Updates.Count == 2, "the resolve edits the message");
        Assert.Contains("*RESOLVED*", _slack.Updates[1].Text);

        await Eventually.True(async () => (await Deliveries(client)).All(d => d["status"]!.GetValue<string>() is "sent" or "merged"),
            "every delivery sent, none failed");
        await _factory!.SettledAsync();
        Assert.Single(_slack.Posts); // posted once
        Assert.Equal(postsBefore + 1, await Fallbacks(client, "post"));
        Assert.Equal(updatesBefore + 2, await Fallbacks(client, "update"));
    }

    [Fact]
    public async Task An_edit_Slack_refuses_as_invalid_blocks_goes_out_minimal()
    {
        _slack.Respond(c => c.Method == "chat.update" && IsRich(c) ? (200, """{"ok":false,"error":"invalid_blocks"}""", null) : null);
        var client = Start();

        await Send(client, Body("g-edit", Firing("a1")));
        await Eventually.True(() => _slack.Posts.Count == 1, "posted");
        Assert.True(IsRich(_slack.Posts[0]));

        await Send(client, Body("g-edit", Firing("a1"), Firing("a2")));
        await Eventually.True(() => _slack.Updates.Count == 1, "the edit goes out minimal");
        Assert.False(IsRich(_slack.Updates[0]));
        Assert.NotEmpty(_slack.Updates[0].Blocks!); // replaces the rich blocks (chat.update keeps blocks it is not given)
        Assert.Contains("2 firing", _slack.Updates[0].Text);
    }

    [Fact]
    public async Task A_minimal_post_whose_answer_is_lost_is_found_in_the_history_not_posted_twice()
    {
        _slack.Respond(c => IsRich(c) ? (200, TooLong, null) : null);
        var first = 0;
        _slack.Slow(TimeSpan.FromSeconds(4), c => IsPost(c) && !IsRich(c) && Interlocked.Exchange(ref first, 1) == 0);
        var client = Start(new() { ["Slack:RequestTimeout"] = "00:00:01" });

        await Send(client, Body("g-lost", Firing("a1")));
        await Eventually.True(async () => (await Deliveries(client)).Any(d => d["kind"]!.GetValue<string>() == "post" && d["status"]!.GetValue<string>() == "sent"),
            "the minimal post is adopted after reconciliation", 20_000);
        Assert.Contains(_slack.Reads, r => r.Method == "conversations.history");
        await _factory!.SettledAsync();
        Assert.Equal(1, _slack.Messages.Count(m => !m.IsReply)); // one top-level message
    }

    [Fact]
    public async Task A_template_that_renders_no_valid_blocks_still_gets_the_page_out_minimal()
    {
        using var templates = new BrokenSlackTemplates();
        try
        {
            var client = Start(new() { ["Templates:Path"] = templates.Path });
            // The warm-up renders with the same broken template (and counts nothing); "before" is read once the start is over.
            await _factory!.WarmedUpAsync();
            var before = await Fallbacks(client, "post");

            await Send(client, Body("g-template", Firing("a1")));

            await Eventually.True(() => _slack.Posts.Count == 1, "the minimal message is posted");
            Assert.False(IsRich(_slack.Posts[0]));
            Assert.Contains("*FIRING*: HighErrorRate", _slack.Posts[0].Text);
            Assert.Contains("could not be rendered", _slack.Posts[0].Text);
            await _factory!.SettledAsync();
            Assert.Equal(before + 1, await Fallbacks(client, "post"));
        }
        finally
        {
            foreach (var owned in Enumerable.Reverse(_owned)) owned.Dispose();
            _owned.Clear();
        }
    }

    [Fact]
    public async Task A_real_500_alert_incident_posts_its_rich_message_under_Slacks_limit()
    {
        // This stand-in refuses what Slack would: more than about 12,000 characters of blocks.
        _slack.Respond(c => SlackLimitsTests.SlackCount(c.Blocks) > 12_000 ? (200, TooLong, null) : null);
        var client = Start(new() { ["Slack:MaxAlertsShown"] = "40" });

        var alerts = Enumerable.Range(0, 500).Select(i => Firing($"a{i}") with
        {
            Annotations = new()
            {
                ["summary"] = $"Order gateway {i} rejects orders: " + new string('s', 300),
                ["description"] = new string('d', 900),
                ["runbook_url"] = "http://alerting.test/runbooks/HighErrorRate",
            },
        }).ToArray();
        await Send(client, Body("g-500", alerts));

        await Eventually.True(() => _slack.Posts.Count == 1, "posted", 20_000);
        var post = _slack.Posts[0];
        Assert.True(IsRich(post), "the rich message fits");
        Assert.True(SlackLimitsTests.SlackCount(post.Blocks) <= 10_000, $"{SlackLimitsTests.SlackCount(post.Blocks)} counted");
        Assert.Contains(post.Blocks!, b => b!["type"]!.GetValue<string>() == "context"
            && b["elements"]![0]!["text"]!.GetValue<string>().Contains("more alert(s) left out here"));
        Assert.DoesNotContain(_slack.Calls, c => !c.Answered);
    }
}
