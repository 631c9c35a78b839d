using B25.Alerting.Routing;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Tests;

public sealed class MatcherTests
{
    [Theory]
    [InlineData("severity=\"critical\"", "critical", true)]
    [InlineData("severity=critical", "critical", true)]
    [InlineData("severity=\"critical\"", "warning", false)]
    [InlineData("severity!=\"critical\"", "warning", true)]
    [InlineData("severity=~\"crit.*\"", "critical", true)]
    [InlineData("severity=~\"crit\"", "critical", false)] // anchored
    [InlineData("severity=~\"warning|critical\"", "critical", true)]
    [InlineData("severity!~\"warning|critical\"", "info", true)]
    [InlineData("severity!~\"warning|critical\"", "critical", false)]
    [InlineData("severity=\"\"", null, true)] // a missing label matches the empty string
    [InlineData("severity!=\"\"", null, false)]
    public void Matches_like_alertmanager(string matcher, string? value, bool expected)
    {
        var labels = value is null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["severity"] = value };
        Assert.Equal(expected, Matcher.Parse(matcher).Matches(labels));
    }

    [Fact]
    public void Quoted_values_may_hold_escaped_quotes() =>
        Assert.True(Matcher.Parse("msg=\"say \\\"hi\\\"\"").Matches(new Dictionary<string, string> { ["msg"] = "say \"hi\"" }));

    [Theory]
    [InlineData("severity")]
    [InlineData("=critical")]
    [InlineData("severity==\"x\"")]
    [InlineData("severity=\"unterminated")]
    [InlineData("severity=~\"(\"")]
    public void Bad_matchers_are_refused_with_a_reason(string text)
    {
        var ex = Assert.Throws<FormatException>(() => Matcher.Parse(text));
        Assert.Contains(text, ex.Message);
    }
}

public sealed class RouterTests
{
    private static Router Build(params RouteOptions[] routes) => new(Options.Create(new RoutingOptions { Routes = [.. routes] }));

    private static readonly Dictionary<string, string> Critical = new() { ["severity"] = "critical", ["service"] = "risk-manager" };

    [Fact]
    public void First_match_wins()
    {
        var router = Build(
            new RouteOptions { Matchers = ["severity=\"critical\""], Slack = new() { Channel = "#a" } },
            new RouteOptions { Slack = new() { Channel = "#b" } });
        Assert.Equal(["#a"], router.TargetsFor("r", Critical).Select(t => t.Target));
    }

    [Fact]
    public void Continue_keeps_matching()
    {
        var router = Build(
            new RouteOptions { Matchers = ["severity=\"critical\""], Continue = true, Slack = new() { Channel = "#a" } },
            new RouteOptions { Matchers = ["service=~\"risk-.*\""], Slack = new() { Channel = "#b" } },
            new RouteOptions { Slack = new() { Channel = "#c" } });
        Assert.Equal(["#a", "#b"], router.TargetsFor("r", Critical).Select(t => t.Target));
    }

    [Fact]
    public void Receiver_is_matched_exactly_or_by_matcher()
    {
        var router = Build(
            new RouteOptions { Receiver = "b25-info", Slack = new() { Channel = "#info" } },
            new RouteOptions { Receiver = "=~\"b25-.*\"", Slack = new() { Channel = "#b25" } },
            new RouteOptions { Slack = new() { Channel = "#other" } });
        Assert.Equal(["#info"], router.TargetsFor("b25-info", Critical).Select(t => t.Target));
        Assert.Equal(["#b25"], router.TargetsFor("b25-critical", Critical).Select(t => t.Target));
        Assert.Equal(["#other"], router.TargetsFor("team-x", Critical).Select(t => t.Target));
    }

    [Fact]
    public void Matching_a_route_allocates_nothing()
    {
        // Asked for every alert of every notification, route by route.
        var router = Build(
            new RouteOptions { Receiver = "=~\"b25-.*\"", Matchers = ["severity=\"critical\"", "service=~\"risk-.*\""], Continue = true, Slack = new() { Channel = "#a" } },
            new RouteOptions { Receiver = "b25-critical", Slack = new() { Channel = "#b" } });
        var routes = router.Routes;
        Assert.True(routes[0].Matches("b25-critical", Critical));
        Assert.False(routes[0].Matches("team-x", Critical));
        Assert.True(routes[1].Matches("b25-critical", Critical));

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
            if (!routes[0].Matches("b25-critical", Critical) || !routes[1].Matches("b25-critical", Critical) || routes[1].Matches("b25-info", Critical))
                Assert.Fail("a route matched differently");
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Invalid_routing_fails_at_start_naming_every_problem()
    {
        var ex = Assert.Throws<OptionsValidationException>(() => Build(
            new RouteOptions { Name = "broken", Matchers = ["severity=~\"(\""], Slack = new() { Channel = "#a" } },
            new RouteOptions { Name = "nowhere" }));
        Assert.Contains("broken", ex.Message);
        Assert.Contains("nowhere", ex.Message);
        Assert.Contains("no target", ex.Message);
    }

    [Fact]
    public void Empty_routing_fails_at_start() =>
        Assert.Throws<OptionsValidationException>(() => Build());
}
