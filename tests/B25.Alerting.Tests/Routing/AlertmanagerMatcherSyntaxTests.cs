using B25.Alerting.Routing;

namespace B25.Alerting.Tests.Routing;

/// <summary>
/// Route matchers take what Alertmanager's own matcher parser takes (the cases of its pkg/labels parse tests, the
/// parser of the 0.25 this stack runs), and refuse what it refuses.
/// </summary>
public sealed class AlertmanagerMatcherSyntaxTests
{
    public static TheoryData<string, string[]> Accepted => new()
    {
        { """{foo="bar"}""", ["foo=\"bar\""] },
        { """{foo=~"bar.*"}""", ["foo=~\"bar.*\""] },
        { """{foo!="bar"}""", ["foo!=\"bar\""] },
        { """{foo!~"bar.*"}""", ["foo!~\"bar.*\""] },
        { """{foo="bar", baz!="quux"}""", ["foo=\"bar\"", "baz!=\"quux\""] },
        { """{foo="bar", baz!~"quux.*"}""", ["foo=\"bar\"", "baz!~\"quux.*\""] },
        { """{foo="bar",baz!~".*quux", derp="wat"}""", ["foo=\"bar\"", "baz!~\".*quux\"", "derp=\"wat\""] },
        { """{foo="bar", baz!="quux", derp="wat"}""", ["foo=\"bar\"", "baz!=\"quux\"", "derp=\"wat\""] },
        { """{foo="bar", baz!~".*quux.*", derp="wat"}""", ["foo=\"bar\"", "baz!~\".*quux.*\"", "derp=\"wat\""] },
        { """{foo="bar", instance=~"some-api.*"}""", ["foo=\"bar\"", "instance=~\"some-api.*\""] },
        { """{foo=""}""", ["foo=\"\""] },
        { """{foo="bar,quux", job="job1"}""", ["foo=\"bar,quux\"", "job=\"job1\""] },
        { """{foo = "bar", dings != "bums", }""", ["foo=\"bar\"", "dings!=\"bums\""] },
        { """foo=bar,dings!=bums""", ["foo=\"bar\"", "dings!=\"bums\""] },
        { """{quote="She said: \"Hi, ladies! That's gender-neutral…\""}""", ["quote=\"She said: \"Hi, ladies! That's gender-neutral…\"\""] },
        { """statuscode=~"5.." """, ["statuscode=~\"5..\""] },
        { """tricky=~~~""", ["tricky=~\"~~\""] },
        { """trickier==\\=\=\" """, ["trickier=\"=\\=\\=\"\""] },
        { """contains_quote != "\"" , contains_comma !~ "foo,bar" , """, ["contains_quote!=\"\"\"", "contains_comma!~\"foo,bar\""] },
        // The example, and a B25 route.
        { """severity="critical",team="x" """, ["severity=\"critical\"", "team=\"x\""] },
        { """{severity=~"critical|warning", service!~"simulator.*", alertname!=Watchdog}""",
            ["severity=~\"critical|warning\"", "service!~\"simulator.*\"", "alertname!=\"Watchdog\""] },
    };

    [Theory]
    [MemberData(nameof(Accepted))]
    public void Alertmanagers_accepted_matchers_parse_to_the_same_name_operator_and_value(string text, string[] expected) =>
        Assert.Equal(expected, Matcher.ParseAll(text).Select(m => m.ToString()));

    [Theory]
    [InlineData("""job=""", "matcher value is not present")]
    [InlineData("""job="value""", "unescaped double quote")]
    [InlineData("""job=value" """, "unescaped double quote")]
    [InlineData("""trickier==\\=\=\"" """, "unescaped double quote")]
    [InlineData("""contains_unescaped_quote = foo"bar""", "unescaped double quote")]
    [InlineData("""{invalid-name = "valid label"}""", "bad matcher format")]
    [InlineData("""{foo=~"invalid[regexp"}""", "invalid regular expression")]
    [InlineData(""" "{foo=\"bar"} """, "bad matcher format")]
    [InlineData(""" "foo=\"bar" """, "bad matcher format")]
    [InlineData(""" "foo=\"bar\"" """, "bad matcher format")]
    [InlineData(""" "foo=\"bar\" """, "bad matcher format")]
    [InlineData(""" "{foo=\"bar\"}" """, "bad matcher format")]
    [InlineData(""" "foo="bar"" """, "bad matcher format")]
    public void Alertmanagers_refused_matchers_are_refused_with_its_reason(string text, string reason)
    {
        var ex = Assert.Throws<FormatException>(() => Matcher.ParseAll(text.Trim()));
        Assert.Contains(reason, ex.Message);
        Assert.Contains(text.Trim(), ex.Message);
    }

    [Fact]
    public void Values_keep_their_meaning_when_matched()
    {
        var labels = new Dictionary<string, string> { ["foo"] = "bar,quux", ["job"] = "job1", ["msg"] = "a\nb" };
        Assert.All(Matcher.ParseAll("""{foo="bar,quux", job="job1"}"""), m => Assert.True(m.Matches(labels)));
        Assert.True(Matcher.Parse("""msg="a\nb" """.Trim()).Matches(labels));
        Assert.True(Matcher.Parse("""foo=~"bar,.*" """.Trim()).Matches(labels));
        Assert.False(Matcher.Parse("""foo=~"bar" """.Trim()).Matches(labels)); // anchored, as in Alertmanager
    }

    [Fact]
    public void A_route_entry_may_hold_several_matchers()
    {
        var router = new Router(Microsoft.Extensions.Options.Options.Create(new RoutingOptions
        {
            Routes =
            [
                new RouteOptions { Name = "team-x", Matchers = ["""severity="critical",team="x" """], Slack = new() { Channel = "#x" } },
                new RouteOptions { Name = "rest", Slack = new() { Channel = "#rest" } },
            ],
        }));
        Assert.Equal("#x", router.TargetsFor("b25-critical", new Dictionary<string, string> { ["severity"] = "critical", ["team"] = "x" }).Single().Target);
        Assert.Equal("#rest", router.TargetsFor("b25-critical", new Dictionary<string, string> { ["severity"] = "critical", ["team"] = "y" }).Single().Target);
    }

    /// <summary>
    /// A regex from the configuration is matched in time linear in the label, so it needs no match timeout: with one (it
    /// was 100 ms), a pattern that backtracks, or just a thread stalled on a busy machine, threw from routing, which fails
    /// the notification's apply (the shipped tree's receiver matcher is a regex).
    /// </summary>
    [Fact]
    public void A_regex_that_would_backtrack_for_ever_is_matched_at_once_and_never_times_out()
    {
        var matcher = Matcher.Parse("""instance=~"(a+)+" """);
        var label = new Dictionary<string, string> { ["instance"] = new string('a', 5_000) + "b" };
        Assert.False(matcher.Matches(label));
        Assert.True(matcher.Matches(new Dictionary<string, string> { ["instance"] = new string('a', 5_000) }));
    }

    [Theory]
    [InlineData("""x=~"(a)\1" """)]   // a backreference
    [InlineData("""x=~"a(?=b)" """)]    // a lookahead
    public void A_regex_RE2_does_not_take_is_refused_at_start_with_the_reason(string text)
    {
        var error = Assert.Throws<FormatException>(() => Matcher.Parse(text));
        Assert.Contains("RE2", error.Message);
    }
}
