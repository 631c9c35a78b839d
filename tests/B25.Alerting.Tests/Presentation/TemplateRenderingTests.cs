using System.Collections.Concurrent;
using B25.Alerting.Delivery;
using B25.Alerting.Delivery.Email;
using B25.Alerting.Delivery.Presentation;
using B25.Alerting.Delivery.Slack;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Scriban;
using Scriban.Runtime;

namespace B25.Alerting.Tests.Presentation;

/// <summary>
/// Renders share Scriban's builtins and the renderers (singletons in the service) across threads: what one message
/// renders never depends on what others render beside it, and no template can change what the next one sees.
/// </summary>
public sealed class TemplateRenderingTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 2, 3, 0, 0, TimeSpan.Zero);

    private static EmergencyStopView Stop(int i, string status) =>
        new($"cmd-{i}", "RiskLimitViolation", status, i % 2 == 0 ? new Dictionary<string, string> { ["exchange"] = $"bin\0ance{i}" } : new Dictionary<string, string>(),
            T0.AddMinutes(i), status is "acknowledged" or "rejected" ? T0.AddMinutes(i + 1) : null, "risk\u001b-manager", "halted `all`\nnow", i == 3);

    /// <summary>Incidents that take every path of the templates: few and many alerts, resolved ones, hidden and poisoned labels, stops, limits.</summary>
    private static List<IncidentView> Incidents()
    {
        var incidents = new List<IncidentView>
        {
            IncidentPresenterTests.OrderBookStale("BTCUSDT"),
            IncidentPresenterTests.OrderBookStale("BTC\0USDT", "ETH\u001bUSDT", "SOL\u202eUSDT") with
            {
                Enrichment = IncidentPresenterTests.Enriched(("fp-BTC\0USDT", 9.5), ("fp-SOL\u202eUSDT", 0.25)),
            },
            Slack.SlackLimitsTests.Incident(1),
            Slack.SlackLimitsTests.Incident(10),
            Slack.SlackLimitsTests.Incident(60, annotationLength: 900),
            Slack.SlackLimitsTests.Incident(500, summary: "<!channel> & *bold* `code` " + new string('x', 4000)),
            Slack.SlackLimitsTests.Incident(3, alertname: "Order\nRejects") with
            {
                Handling = new IncidentHandling("@jane", T0.AddMinutes(2), "slack", "silence-1", T0.AddHours(4), "@joe"),
                EmergencyStops = [.. new[] { "requested", "requesting", "acknowledged", "rejected", "dry-run", "suppressed", "odd" }.Select((status, i) => Stop(i, status))],
            },
        };
        var firing = Slack.SlackLimitsTests.Incident(12);
        var resolved = firing.Alerts.Select((a, i) => i % 3 == 0 ? a with { Status = "resolved", EndsAt = T0.AddMinutes(30).ToString("O") } : a).ToList();
        incidents.Add(firing with { Alerts = resolved, FiringCount = 8, ResolvedCount = 4, TruncatedAlerts = 7 });
        incidents.Add(firing with
        {
            State = "closed", ClosedAt = T0.AddHours(1), FiringCount = 0, ResolvedCount = 12,
            Alerts = [.. firing.Alerts.Select(a => a with { Status = "resolved", EndsAt = T0.AddHours(1).ToString("O") })],
        });
        return incidents;
    }

    private static IEnumerable<Func<string>> Renders(IReadOnlyList<IncidentView> incidents, SlackRenderer slack, SlackRenderer interactive,
        EmailRenderer email)
    {
        var changes = new ChangeSummary[]
        {
            new("joined", 3, 1, ["a\0b", "*c*"], ["<d>"]),
            new("resolved", 0, 40, [], [.. Enumerable.Range(0, 40).Select(i => $"alert {i}")]),
        };
        foreach (var incident in incidents)
        {
            yield return () => Slack(slack.RenderIncident(incident));
            yield return () => Slack(interactive.RenderIncident(incident));
            yield return () => slack.RenderChange(incident, changes);
            yield return () => Mail(email.Render(incident, EmailKinds.Opened));
            yield return () => Mail(email.Render(incident, EmailKinds.Closed, openedUnsent: true));
        }

        static string Slack(B25.Alerting.Delivery.Slack.SlackMessage message) => message.Text + "\n" + message.Blocks.ToJsonString();
        static string Mail(EmailContent mail) => string.Join("\n---\n", mail.Subject, mail.Text, mail.Html);
    }

    [Fact]
    public void Renders_on_many_threads_at_once_match_the_same_renders_one_at_a_time()
    {
        var time = new FakeTimeProvider(T0.AddMinutes(20));
        var presenter = IncidentPresenterTests.Presenter(hidden: "job,cluster,environment,tier,instance");
        var slack = new SlackRenderer(Options.Create(new SlackOptions()), Options.Create(new TemplateOptions()), presenter, time);
        var interactive = new SlackRenderer(Options.Create(new SlackOptions { SigningSecret = "secret", MaxAlertsShown = 30 }),
            Options.Create(new TemplateOptions()), presenter, time);
        var email = new EmailRenderer(Options.Create(new SmtpOptions()), Options.Create(new TemplateOptions()), presenter, NullLogger<EmailRenderer>.Instance);
        var renders = Renders(Incidents(), slack, interactive, email).ToList();
        var expected = renders.Select(render => render()).ToList();
        // Nearly every render shows something of its own (a few thread notes are alike), so a mix-up between them shows.
        Assert.True(expected.Distinct().Count() > expected.Count * 9 / 10);

        const int threads = 6;
        var mismatches = new ConcurrentBag<string>();
        var start = new Barrier(threads);
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            var order = Enumerable.Range(0, renders.Count).ToArray();
            new Random(t).Shuffle(order); // each thread its own order: different messages render side by side
            start.SignalAndWait();
            for (var round = 0; round < 4; round++)
                foreach (var i in order)
                {
                    try
                    {
                        if (renders[i]() != expected[i]) mismatches.Add($"render {i} differs on thread {t}");
                    }
                    catch (Exception ex)
                    {
                        mismatches.Add($"render {i} threw on thread {t}: {ex.Message}");
                    }
                }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());

        Assert.Empty(mismatches);
    }

    private static readonly TemplateRendering Rendering = new(("json", new Func<object?, string>(value => $"<{value}>")));

    private static string Render(string source, ScriptObject? model = null) =>
        TemplateRendering.Render(Rendering.Context(model ?? new ScriptObject()), Template.Parse(source));

    [Fact]
    public void A_template_cannot_change_the_builtins_other_renders_share()
    {
        Assert.ThrowsAny<Exception>(() => Render("{{ string.upcase = 1 }}"));
        Assert.ThrowsAny<Exception>(() => Render("{{ string.shout = 1 }}"));
        Assert.ThrowsAny<Exception>(() => Render("{{ date.format = '%Y' }}"));
        Assert.Equal("1", Render("{{ array = 1 }}{{ array }}")); // shadows it in its own render only
        Assert.Equal("2", Render("{{ json = 2 }}{{ json }}"));

        Assert.Equal("A|1,2|<x>|", Render("{{ 'a' | string.upcase }}|{{ [1, 2] | array.join ',' }}|{{ 'x' | json }}|{{ string.shout }}"));
        Assert.Equal("02 Dec 2026", Render("{{ date.parse '2026-12-02' }}"));
    }

    [Fact]
    public void A_template_cannot_change_the_model_or_leave_variables_for_the_next_template_of_its_message()
    {
        var alert = TemplateRendering.Data(new ScriptObject { ["name"] = "OrderBookStale" });
        var context = Rendering.Context(new ScriptObject { ["headline"] = "Order book stale", ["alerts"] = new List<ScriptObject> { alert } });

        Assert.Equal("mine", TemplateRendering.Render(context, Template.Parse("{{ headline = 'mine'; note = 1 }}{{ headline }}")));
        Assert.ThrowsAny<Exception>(() => TemplateRendering.Render(context, Template.Parse("{{ alerts[0].name = 'x' }}")));
        Assert.Equal("Order book stale OrderBookStale", TemplateRendering.Render(context, Template.Parse("{{ headline }} {{ alerts[0].name }}")));
        Assert.ThrowsAny<Exception>(() => TemplateRendering.Render(context, Template.Parse("{{ note }}"))); // strict: not defined here
    }
}
