using System.Text.Json.Nodes;
using B25.Alerting.Delivery;
using B25.Alerting.Delivery.Email;
using B25.Alerting.Delivery.Presentation;
using B25.Alerting.Delivery.Slack;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Tests.Presentation;

/// <summary>Control characters from alert data never reach Slack or mail raw: they are shown as \uXXXX.</summary>
public sealed class ControlCharacterTests
{
    [Theory]
    [InlineData("binance\0", "binance\\u0000")]
    [InlineData("\u001b[31mred\u001b[0m", "\\u001B[31mred\\u001B[0m")]
    [InlineData("a\u0085b\u007fc", "a\\u0085b\\u007Fc")]
    [InlineData("abc\u202Egpj.exe", "abc\\u202Egpj.exe")]
    [InlineData("line\nbreak\ttab", "line\\u000Abreak\\u0009tab")]
    [InlineData("plain text, ünïcode ✓", "plain text, ünïcode ✓")]
    public void Labels_are_one_line_with_every_control_character_escaped(string raw, string shown) =>
        Assert.Equal(shown, ControlCharacters.Escape(raw));

    [Fact]
    public void Annotations_keep_line_breaks_and_tabs()
    {
        Assert.Equal("first\nsecond\n\tthird\\u0000", ControlCharacters.Escape("first\r\nsecond\n\tthird\0", multiline: true));
        Assert.Equal("lone\\u000Dcarriage", ControlCharacters.Escape("lone\rcarriage", multiline: true));
    }

    [Fact]
    public void Clean_text_is_not_copied()
    {
        const string text = "OrderBookStale symbol=BTCUSDT";
        Assert.Same(text, ControlCharacters.Escape(text));
    }

    private static IncidentView Poisoned()
    {
        var incident = IncidentPresenterTests.OrderBookStale("BTC\0USDT", "ETH\u001bUSDT");
        return incident with
        {
            CommonAnnotations = new Dictionary<string, string>(incident.CommonAnnotations) { ["summary"] = "Order book\0 stale\u0007" },
            CommonLabels = new Dictionary<string, string>(incident.CommonLabels) { ["exchange"] = "bin\u0000ance" },
        };
    }

    private static IEnumerable<string> Texts(JsonNode? node) => node switch
    {
        JsonObject o => o.SelectMany(p => p.Value is JsonValue v && v.TryGetValue<string>(out var s) ? [s] : Texts(p.Value)),
        JsonArray a => a.SelectMany(Texts),
        _ => [],
    };

    private static bool HasControl(string text) => text.Any(c => char.IsControl(c) && c is not '\n');

    [Fact]
    public void A_slack_message_shows_them_escaped()
    {
        var renderer = new SlackRenderer(Options.Create(new SlackOptions()), Options.Create(new TemplateOptions()), IncidentPresenterTests.Presenter());
        var message = renderer.RenderIncident(Poisoned());

        var texts = Texts(message.Blocks).Append(message.Text).ToList();
        Assert.DoesNotContain(texts, HasControl);
        Assert.Contains(texts, t => t.Contains("BTC\\u0000USDT"));
        Assert.Contains(texts, t => t.Contains("bin\\u0000ance"));
    }

    [Fact]
    public void A_mail_shows_them_escaped_in_subject_text_and_html()
    {
        var renderer = new EmailRenderer(Options.Create(new SmtpOptions()), Options.Create(new TemplateOptions()), IncidentPresenterTests.Presenter(),
            NullLogger<EmailRenderer>.Instance);
        var mail = renderer.Render(Poisoned(), "opened");

        Assert.False(HasControl(mail.Subject));
        Assert.False(HasControl(mail.Text.Replace("\r", "")), mail.Text);
        Assert.False(HasControl(mail.Html.Replace("\r", "").Replace("\t", "")));
        Assert.Contains("BTC\\u0000USDT", mail.Text);
        Assert.Contains("ETH\\u001BUSDT", mail.Html);
    }

    [Fact]
    public void A_thread_reply_names_alerts_escaped() =>
        Assert.Equal("OrderBookStale symbol=BTC\\u0000USDT",
            AlertNaming.Name(new Dictionary<string, string> { ["alertname"] = "OrderBookStale", ["symbol"] = "BTC\0USDT" }, ["symbol"]));

    [Fact]
    public void A_null_label_value_the_intake_let_through_stays_null() =>
        Assert.Null(ControlCharacters.Escape(new Dictionary<string, string> { ["empty"] = null! })["empty"]);
}
