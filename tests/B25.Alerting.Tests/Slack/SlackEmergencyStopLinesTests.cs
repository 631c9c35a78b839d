using B25.Alerting.Delivery;
using B25.Alerting.Delivery.Slack;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Tests.Slack;

/// <summary>
/// The incident's message shows its emergency stops (the routine course of a stop is an edit of it, not a thread
/// message): one line per stop, the newest few, with what the alert data says escaped.
/// </summary>
public sealed class SlackEmergencyStopLinesTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    private static SlackRenderer Renderer() =>
        new(Options.Create(new SlackOptions()), Options.Create(new TemplateOptions()), Presentation.IncidentPresenterTests.Presenter(),
            new Microsoft.Extensions.Time.Testing.FakeTimeProvider(T0));

    private static EmergencyStopView Stop(string id, string status, string? by = null, string? answer = null, bool unanswered = false,
        Dictionary<string, string>? scope = null) =>
        new(id, "RiskLimitViolation", status, scope ?? new() { ["exchange"] = "binance" }, T0, by is null ? null : T0.AddSeconds(2), by, answer,
            unanswered);

    private static string Shown(IncidentView incident)
    {
        var message = Renderer().RenderIncident(incident);
        return string.Join("\n", message.Blocks.ToJsonString(new System.Text.Json.JsonSerializerOptions
        {
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }));
    }

    [Fact]
    public void Each_stop_is_a_line_saying_where_it_stands()
    {
        var shown = Shown(SlackLimitsTests.Incident(1) with
        {
            EmergencyStops =
            [
                Stop("c-req", "requested"),
                Stop("c-ack", "acknowledged", "risk-manager", "halted binance"),
                Stop("c-rej", "rejected", "risk-officer", "no positions"),
                Stop("c-dry", "dry-run"),
                Stop("c-cap", "suppressed"),
            ],
        });

        Assert.Contains("Emergency stop of `exchange=binance` requested from the risk manager at 12:00 UTC, waiting for its answer (command `c-req`)", shown);
        Assert.Contains("*acknowledged* by risk-manager at 12:00 UTC: halted binance (command `c-ack`)", shown);
        Assert.Contains("*rejected* by risk-officer at 12:00 UTC: no positions (command `c-rej`)", shown);
        Assert.Contains("DRY RUN: an emergency stop of `exchange=binance` would have been requested", shown);
        Assert.Contains("*NOT requested*", shown);
        Assert.DoesNotContain("<!here>", shown); // the message never notifies: what needs people is a thread note
    }

    [Fact]
    public void An_unanswered_stop_says_it_may_not_have_happened()
    {
        var shown = Shown(SlackLimitsTests.Incident(1) with { EmergencyStops = [Stop("c-1", "requested", unanswered: true)] });

        Assert.Contains("*no answer from the risk manager in time*, it may not have happened (command `c-1`)", shown);
        Assert.DoesNotContain("waiting for its answer", shown);
    }

    [Fact]
    public void Only_the_newest_stops_are_listed_and_the_rest_counted()
    {
        var stops = Enumerable.Range(0, 8).Select(i => Stop($"c-{i}", "requested")).ToList();
        var shown = Shown(SlackLimitsTests.Incident(1) with { EmergencyStops = stops });

        Assert.Contains("…3 earlier emergency stop(s)", shown);
        Assert.DoesNotContain("`c-2`", shown);
        Assert.Contains("`c-3`", shown);
        Assert.Contains("`c-7`", shown);
    }

    [Fact]
    public void Alert_data_in_a_stop_is_escaped()
    {
        var shown = Shown(SlackLimitsTests.Incident(1) with
        {
            EmergencyStops = [Stop("c-1", "acknowledged", "<!channel>", "ok <@U123>", scope: new() { ["symbol"] = "<!everyone>" })],
        });

        Assert.DoesNotContain("<!channel>", shown);
        Assert.DoesNotContain("<!everyone>", shown);
        Assert.DoesNotContain("<@U123>", shown);
    }

    [Fact]
    public void The_minimal_message_keeps_the_stops_state()
    {
        var incident = SlackLimitsTests.Incident(1) with { EmergencyStops = [Stop("c-1", "acknowledged", "risk-manager")] };

        Assert.Contains("Emergency stop: acknowledged", SlackFallbackMessage.Render(incident, refusedBySlack: true).Text);
    }
}
