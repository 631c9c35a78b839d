using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using B25.Alerting.Hosting;
using B25.Alerting.Tests.Support;

namespace B25.Alerting.Tests.Hosting;

/// <summary>README's "Try it", as a new user runs it: the example is a real B25 alert, and a second run still pages.</summary>
public sealed class TryItTests : IDisposable
{
    private const string ExampleStartsAt = "2026-12-02T07:41:12.000Z";
    private const string ExampleEndsAt = "2026-12-02T07:44:30.000Z";

    private readonly SlackStandIn _slack = new();

    public void Dispose() => _slack.Dispose();

    private static string RepoFile(params string[] parts)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "B25.Alerting.sln"))) dir = dir.Parent;
        return Path.Combine([dir!.FullName, .. parts]);
    }

    private static string Example(string name) => File.ReadAllText(RepoFile("docs", "examples", name + ".json"));

    [Fact]
    public void README_stamps_exactly_the_times_the_examples_carry()
    {
        var readme = File.ReadAllText(RepoFile("README.md"));
        Assert.Contains($"s/{ExampleStartsAt}/$STARTS/", readme);
        Assert.Contains($"s/{ExampleEndsAt}/$ENDS/", readme);
        Assert.Contains(ExampleStartsAt, Example("firing"));
        Assert.Contains(ExampleStartsAt, Example("resolved"));
        Assert.Contains(ExampleEndsAt, Example("resolved"));
        Assert.Contains(".NET 10 SDK", readme);
    }

    [Fact]
    public void The_example_is_a_real_B25_alert()
    {
        var firing = JsonNode.Parse(Example("firing"))!;
        var labels = firing["commonLabels"]!.AsObject();
        var alertname = labels["alertname"]!.GetValue<string>();
        var rules = string.Join("\n", Directory.EnumerateFiles(RepoFile("prometheus", "alerts"), "*.yml").Select(File.ReadAllText));
        var rule = Regex.Match(rules, $@"- alert: {alertname}\s*\n(?:.*\n)*?\s+severity: (\w+)");
        Assert.True(rule.Success, $"{alertname} is not a rule in prometheus/alerts");
        Assert.Equal(rule.Groups[1].Value, labels["severity"]!.GetValue<string>());
        Assert.True(File.Exists(RepoFile("docs", "runbooks", alertname + ".md")), "the example's runbook exists");
        Assert.Equal($"/runbooks/{alertname}", firing["commonAnnotations"]!["runbook_url"]!.GetValue<string>());
        Assert.Contains(firing["receiver"]!.GetValue<string>(), File.ReadAllText(RepoFile("alertmanager", "alertmanager.yml")));
        Assert.Contains(labels["service"]!.GetValue<string>(), File.ReadAllText(RepoFile("prometheus", "prometheus.yml")));
    }

    [Fact]
    public async Task Running_try_it_twice_pages_twice()
    {
        using var factory = new AlertingFactory(_slack, new() { ["Webhook:BearerToken"] = "" });
        var client = factory.CreateClient();
        for (var run = 1; run <= 2; run++)
        {
            // What README's date and sed commands do: the current time as the alert's start (and end).
            var starts = new DateTimeOffset(2026, 12, 2, 9, 0, 0, TimeSpan.Zero).AddMinutes(10 * run);
            string Stamp(string name) => Example(name)
                .Replace(ExampleStartsAt, starts.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'"))
                .Replace(ExampleEndsAt, starts.AddMinutes(3).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'"));
            async Task<string> Post(string body) =>
                (await (await client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(body))).Content.ReadFromJsonAsync<JsonObject>())!["status"]!.GetValue<string>();

            Assert.Equal("accepted", await Post(Stamp("firing")));
            Assert.Equal("duplicate", await Post(Stamp("firing")));
            Assert.Equal("accepted", await Post(Stamp("resolved")));

            var expected = run;
            await Eventually.True(async () => (await client.GetFromJsonAsync<JsonArray>("/api/incidents?state=closed"))!.Count == expected, $"run {run}: closed");
            await Eventually.True(() => _slack.Posts.Count == expected, $"run {run}: a new message (posts: {_slack.Posts.Count})");
        }
        Assert.All(_slack.Posts, p => Assert.Equal("#trading-alerts-critical", p.Channel));
        Assert.All(_slack.Posts, p => Assert.Contains("OrderBookStale", p.Text));
    }

    [Fact]
    public async Task The_home_page_links_incidents_runbooks_metrics_and_health_and_every_link_answers()
    {
        using var factory = new AlertingFactory(_slack);
        var client = factory.CreateClient();

        var response = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType!.MediaType);
        var html = await response.Content.ReadAsStringAsync();
        var hrefs = Regex.Matches(html, "href=\"([^\"]+)\"").Select(m => WebUtility.HtmlDecode(m.Groups[1].Value)).ToList();
        foreach (var wanted in new[] { "api/incidents", "runbooks", "metrics", "health/ready", "health/live" })
            Assert.Contains(wanted, hrefs);
        Assert.Equal(HomeEndpoints.Links.Count, hrefs.Count);
        foreach (var href in hrefs)
        {
            var target = new Uri(new Uri("http://localhost/"), href);
            Assert.True((await client.GetAsync(target)).StatusCode == HttpStatusCode.OK, $"{href} does not answer 200");
        }
    }
}
