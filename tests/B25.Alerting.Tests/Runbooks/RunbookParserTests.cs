using B25.Alerting.Runbooks;

namespace B25.Alerting.Tests.Runbooks;

/// <summary>The runbook format: what is read out of a runbook, and what is reported when it does not fit.</summary>
public sealed class RunbookParserTests
{
    private const string WellFormed =
        """
        # ServiceDown

        A B25 service does not answer its scrape.

        ## Meaning

        `up == 0` for one of the seven services.

        ## Impact on trading

        Depends on the tier.

        ## First checks

        ```promql
        up{job="market-data"}
        ```

        ## Actions

        1. Restart the service on its host.
        2. Check its logs.

        ## Escalation

        The service owner.
        """;

    private static (Runbook Runbook, IReadOnlyList<string> Problems) Parse(string markdown, string alertName = "ServiceDown", string? grafanaUrl = null) =>
        RunbookParser.Parse(alertName, alertName + ".md", markdown, grafanaUrl);

    private static string WithFirstAction(string action) => WellFormed.Replace("1. Restart the service on its host.", "1. " + action);

    [Theory]
    [InlineData("OrderBookStale", "The order book of one symbol on one exchange has had no update for more than 10 seconds: strategies are quoting on old prices.",
        "Pause quoting on the stale symbol in the strategy engine until its book updates again.")]
    [InlineData("HighDrawdown", "The account is more than 5% below its equity peak for over a minute: losses are running and the risk manager may be asked to stop trading.",
        "Confirm the emergency stop was acknowledged in the incident's Slack thread; if not, stop trading by hand now.")]
    public void Sample_runbooks_parse_without_problems_into_title_summary_and_first_action(string alertName, string summary, string firstAction)
    {
        var (runbook, problems) = Parse(RunbookFiles.Sample(alertName), alertName);

        Assert.Empty(problems);
        Assert.Equal(alertName, runbook.AlertName);
        Assert.Equal(alertName, runbook.Title);
        Assert.Equal(summary, runbook.Summary);
        Assert.Equal(firstAction, runbook.FirstAction);
        Assert.Contains($"<h1 id=\"{alertName.ToLowerInvariant()}\">{alertName}</h1>", runbook.Html);
        Assert.Contains("<code class=\"language-promql\">", runbook.Html);
    }

    [Fact]
    public void First_action_with_markup_or_more_than_its_line_is_reported_and_given_as_plain_text()
    {
        var (runbook, problems) = Parse(WithFirstAction(
            "**Restart** the [service](https://example.org/x)\n   with `systemctl restart b25-<service>`.\n   - not this sub-item"));

        Assert.Equal("Restart the service with systemctl restart b25-<service>.", runbook.FirstAction);
        Assert.Equal(2, problems.Count);
        Assert.Equal("the first action continues past its line (one line, nothing nested under it)", problems[0]);
        Assert.StartsWith("the first action has markup (none of ` * _ [ ] < > | \\ or {{): it is shown as plain text: '**Restart**", problems[1]);
    }

    [Theory]
    [InlineData("restart the service on its host.")]
    [InlineData("Restart the service on its host")]
    [InlineData("Restart the service. Then check its logs.")]
    [InlineData("Is it down? Restart it.")]
    public void A_first_action_that_is_not_one_imperative_sentence_is_reported(string action) =>
        Assert.Equal([$"the first action is not one sentence (a capital letter first, a period last, no other sentence end): '{action}'"],
            Parse(WithFirstAction(action)).Problems);

    [Fact]
    public void Actions_must_start_with_the_list_numbered_from_1()
    {
        Assert.Equal(["'## Actions' does not start with its numbered list"],
            Parse(WellFormed.Replace("## Actions\n\n1.", "## Actions\n\nIn order:\n\n1.")).Problems);
        Assert.Equal(["the numbered list of '## Actions' starts at 2, not 1"],
            Parse(WellFormed.Replace("1. Restart", "2. Restart").Replace("2. Check", "3. Check")).Problems);
    }

    [Fact]
    public void A_section_that_is_not_one_of_the_five_is_reported()
    {
        var (_, problems) = Parse(WellFormed.Replace("## Escalation", "## Notes\n\nSome.\n\n## Escalation"));

        Assert.Equal(["'## Notes' is not a section of a runbook (use ### inside one of Meaning, Impact on trading, First checks, Actions, Escalation)"], problems);
    }

    [Fact]
    public void Missing_sections_and_first_action_are_each_named()
    {
        var markdown = """
            # ServiceDown

            A B25 service does not answer its scrape.

            ## Meaning

            Something.

            ## Escalation

            Someone.
            """;

        var (runbook, problems) = Parse(markdown);

        Assert.Equal(["no '## Impact on trading' section", "no '## First checks' section", "no '## Actions' section"], problems);
        Assert.Null(runbook.FirstAction);
        Assert.Contains("<h2 id=\"meaning\">Meaning</h2>", runbook.Html); // still served
    }

    [Fact]
    public void No_title_no_summary_and_a_title_that_is_not_the_alert_name_are_reported()
    {
        Assert.Contains("does not start with the title '# ServiceDown'", Parse(WellFormed.Replace("# ServiceDown\n", "")).Problems);
        Assert.Contains("no one-line summary paragraph under the title",
            Parse(WellFormed.Replace("A B25 service does not answer its scrape.\n", "")).Problems);
        Assert.Equal(["the title is '# Service Down', not '# ServiceDown' (the file name)"],
            Parse(WellFormed.Replace("# ServiceDown", "# Service Down")).Problems);
    }

    [Fact]
    public void Actions_without_a_numbered_list_or_with_bullets_are_reported()
    {
        var bulleted = Parse(WellFormed.Replace("1. Restart", "- Restart").Replace("2. Check", "- Check"));
        Assert.Equal(["'## Actions' starts with a bulleted list; number it (1. ...): its first item is the first action"], bulleted.Problems);
        Assert.Null(bulleted.Runbook.FirstAction);

        var prose = Parse(WellFormed.Replace("1. Restart", "Restart").Replace("2. Check", "Check"));
        Assert.Equal(["'## Actions' has no numbered list (its first item is the first action)"], prose.Problems);
    }

    [Fact]
    public void A_first_action_over_140_characters_is_reported_and_still_given()
    {
        var longAction = "Restart the service " + new string('x', 130) + ".";
        var (runbook, problems) = Parse(WithFirstAction(longAction));

        Assert.Equal([$"the first action is {longAction.Length} characters, more than 140: '{longAction}'"], problems);
        Assert.Equal(longAction, runbook.FirstAction);
    }

    [Fact]
    public void First_checks_without_a_promql_block_and_sections_out_of_order_are_reported()
    {
        var noPromQl = Parse(WellFormed.Replace("```promql", "```"));
        Assert.Equal(["'## First checks' has no ```promql block"], noPromQl.Problems);

        var swapped = WellFormed.Replace("## Meaning", "## TEMP").Replace("## Escalation", "## Meaning").Replace("## TEMP", "## Escalation");
        Assert.Equal(["sections out of order (Escalation, Impact on trading, First checks, Actions, Meaning); expected Meaning, Impact on trading, First checks, Actions, Escalation"],
            Parse(swapped).Problems);
    }

    [Fact]
    public void Raw_html_is_shown_as_text_and_links_with_unsafe_schemes_go_nowhere()
    {
        var markdown = WellFormed.Replace("Depends on the tier.",
            """
            <script>alert(1)</script> <img src=x onerror=alert(2)>

            <div onclick="alert(3)">block</div>

            [a](javascript:alert(4)) [b](JAVASCRIPT:alert(5)) [c](data:text/html,<script>alert(6)</script>) <javascript:alert(7)>
            ![d](javascript:alert(8)) [e](vbscript:msgbox) [ok](https://grafana.b25.example/d/b25-market-data) [mail](mailto:oncall@b25.example)
            """);

        var html = Parse(markdown).Runbook.Html;

        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<img src=\"x\"", html);
        Assert.DoesNotContain("<div", html);
        Assert.DoesNotContain("=\"javascript:", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("=\"vbscript:", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("=\"data:", html);
        Assert.Contains("<a href=\"#\">javascript:alert(7)</a>", html); // an autolink: its text shown, going nowhere
        Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;", html);
        Assert.Contains("<a href=\"https://grafana.b25.example/d/b25-market-data\">ok</a>", html);
        Assert.Contains("<a href=\"mailto:oncall@b25.example\">mail</a>", html);
        Assert.Contains("<a href=\"#\">a</a>", html);
    }

    [Fact]
    public void Grafana_links_point_at_Grafana_Url_or_show_as_text_without_it()
    {
        var markdown = WellFormed.Replace("Depends on the tier.", "Open [30 Market Data Service](grafana:/d/b25-market-data?var-service=market-data) now.");

        Assert.Contains("Open <a href=\"https://grafana.b25.example/d/b25-market-data?var-service=market-data\">30 Market Data Service</a> now.",
            Parse(markdown, grafanaUrl: "https://grafana.b25.example/").Runbook.Html);
        Assert.Contains("Open 30 Market Data Service now.", Parse(markdown).Runbook.Html);
        Assert.Contains("Open 30 Market Data Service now.", Parse(markdown, grafanaUrl: "not a url").Runbook.Html);
    }

    [Theory]
    [InlineData("/runbooks/WebSocketDisconnected", "WebSocketDisconnected")]
    [InlineData("/runbooks/ServiceDown#actions", "ServiceDown#actions")]
    [InlineData("/runbooks", "../runbooks")]
    [InlineData("/runbooks/", "../runbooks")]
    [InlineData("/api/incidents", "/api/incidents")]
    [InlineData("WebSocketDisconnected.md", "WebSocketDisconnected")]
    [InlineData("./ServiceDown.md#actions", "ServiceDown#actions")]
    [InlineData("README.md", "../runbooks")]
    [InlineData("../../prometheus/alerts/services.yml", "../../prometheus/alerts/services.yml")]
    [InlineData("https://example.org/x.md", "https://example.org/x.md")]
    [InlineData(" javascript:alert(1)", "#")]
    [InlineData("java\tscript:alert(1)", "#")]
    public void Links_to_sibling_runbooks_open_their_pages_and_other_links_are_checked(string link, string expected) =>
        Assert.Equal(expected, RunbookParser.SafeLink(link));
}
