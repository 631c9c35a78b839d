using System.Net;
using System.Text.RegularExpressions;
using B25.Alerting.Tests.Support;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace B25.Alerting.Tests.Runbooks;

/// <summary>GET /runbooks and /runbooks/{alertname} on the whole service, runbooks from a test folder.</summary>
public sealed partial class RunbookEndpointTests : IDisposable
{
    private readonly RunbookFolder _folder = new();
    private readonly LogCapture _logs = new();
    private AlertingFactory? _factory;
    private WebApplicationFactory<Program>? _service;

    public void Dispose()
    {
        _factory?.Dispose();
        _folder.Dispose();
        _logs.Dispose();
    }

    private WebApplicationFactory<Program> Service(string? folder = null)
    {
        if (_service is not null) return _service;
        // The capture is added after the service's own logging set-up (which clears the providers).
        _factory = new AlertingFactory(slack: null, new() { ["Runbooks:Path"] = folder ?? _folder.Path });
        return _service = _factory.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton<ILoggerProvider>(_logs)));
    }

    private async Task<(HttpResponseMessage Response, string Body)> Get(string path, string? folder = null)
    {
        var response = await Service(folder).CreateClient().GetAsync(path);
        return (response, await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("/runbooks")]
    [InlineData("/runbooks/")]
    public async Task Index_lists_every_runbook_linked_with_its_summary(string path)
    {
        var (response, body) = await Get(path);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("<h1>Runbooks</h1>", body);
        Assert.Equal(["/runbooks/HighDrawdown", "/runbooks/OrderBookStale"], Links(body));
        Assert.Contains("<li><a href=\"/runbooks/OrderBookStale\">OrderBookStale</a><p>The order book of one symbol on one exchange has had no update for more than 10 seconds: strategies are quoting on old prices.</p></li>", body);
        Assert.Contains("<p>The account is more than 5% below its equity peak for over a minute: losses are running and the risk manager may be asked to stop trading.</p>", body);
    }

    [Fact]
    public async Task Runbook_page_shows_the_rendered_runbook_and_links_back_to_the_index()
    {
        var (response, body) = await Get("/runbooks/OrderBookStale");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("<title>OrderBookStale · Runbook · B25 Alerting</title>", body);
        Assert.Contains("<h1 id=\"orderbookstale\">OrderBookStale</h1>", body);
        Assert.Contains("<h2 id=\"first-checks\">First checks</h2>", body);
        Assert.Contains("<li>Pause quoting on the stale symbol in the strategy engine until its book updates again.</li>", body);
        Assert.Contains("<a class=\"back\" href=\"/runbooks\">&larr; All runbooks</a>", body);
        // A link to another runbook (/runbooks/HighDrawdown) opens its page, relative to this one.
        Assert.Contains("<a href=\"HighDrawdown\">HighDrawdown</a>", body);
        // No Grafana:Url: the dashboard's name, without a link.
        Assert.Contains("Open 30 Market Data Service, panel", body);
    }

    [Fact]
    public async Task Grafana_links_of_a_runbook_point_at_Grafana_Url()
    {
        _factory = new AlertingFactory(slack: null, new() { ["Runbooks:Path"] = _folder.Path, ["Grafana:Url"] = "https://grafana.b25.example" });
        _service = _factory;

        var (_, body) = await Get("/runbooks/OrderBookStale");

        Assert.Contains("Open <a href=\"https://grafana.b25.example/d/b25-market-data?var-service=market-data\">30 Market Data Service</a>, panel", body);
    }

    [Fact]
    public async Task Unknown_name_gets_a_404_page_that_says_so_and_links_the_index()
    {
        var (response, body) = await Get("/runbooks/NoSuchAlert");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("text/html; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        Assert.Contains("<h1>No runbook for NoSuchAlert</h1>", body);
        Assert.Contains("<a href=\"/runbooks\">See every runbook</a>", body);
        Assert.DoesNotContain("Did you mean", body);
    }

    [Theory]
    [InlineData("/runbooks/orderbookstale")]
    [InlineData("/runbooks/ORDERBOOKSTALE")]
    [InlineData("/runbooks/OrderBookStale.md")]
    public async Task A_name_differing_only_by_case_is_not_found_but_offered(string path)
    {
        var (response, body) = await Get(path);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("Did you mean <a href=\"/runbooks/OrderBookStale\">OrderBookStale</a>?", body);
        Assert.Contains("<a href=\"/runbooks\">See every runbook</a>", body);
    }

    [Fact]
    public async Task A_hostile_name_is_encoded_everywhere_it_is_shown()
    {
        const string hostile = "<svg onload=alert('x')>\"><img src=x onerror=alert(1)>&amp;<b>";

        var (response, body) = await Get("/runbooks/" + Uri.EscapeDataString(hostile));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.DoesNotContain("<svg", body);
        Assert.DoesNotContain("<img", body);
        Assert.DoesNotContain("<b>", body);
        Assert.DoesNotContain("\"><", body);
        const string encoded = "&lt;svg onload=alert(&#39;x&#39;)&gt;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&amp;amp;&lt;b&gt;";
        Assert.Contains($"<h1>No runbook for {encoded}</h1>", body);
        Assert.Contains($"<code>{encoded}</code>", body);

        // An escaped slash stays escaped in the path (ASP.NET Core does not decode %2F), and is encoded all the same.
        (_, body) = await Get("/runbooks/" + Uri.EscapeDataString("</script><script>alert(1)</script>"));
        Assert.DoesNotContain("<script", body);
        Assert.Contains("<h1>No runbook for &lt;%2Fscript&gt;&lt;script&gt;alert(1)&lt;%2Fscript&gt;</h1>", body);
    }

    [Theory]
    [InlineData("/runbooks")]
    [InlineData("/runbooks/HighDrawdown")]
    [InlineData("/runbooks/Nope")]
    public async Task Pages_are_utf8_html_without_script_under_a_policy_that_allows_none(string path)
    {
        var (response, body) = await Get(path);

        Assert.Equal("text/html; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        Assert.Equal("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            Assert.Single(response.Headers.GetValues("Content-Security-Policy")));
        Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
        Assert.StartsWith("<!doctype html>", body);
        Assert.Contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">", body);
        Assert.Contains("<style>", body);
        Assert.DoesNotContain("<script", body, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_malformed_runbook_is_a_warning_at_start_naming_the_file_and_what_is_missing()
    {
        _folder.Add("ServiceDown.md", "# ServiceDown\n\nA service is down.\n\n## Meaning\n\nIt is down.\n");

        _ = Service().Services; // started, no request made

        var malformed = _logs.Warnings.Where(w => w.EventId == 6101).ToList();
        Assert.True(malformed.Count == 1, $"{malformed.Count} malformed-runbook warnings; the log: " +
                                          string.Join(" | ", _logs.Lines.Select(l => $"{l.Level} {l.EventId} {l.Category}: {l.Message}")));
        var warning = malformed[0];
        Assert.Equal($"Runbook {Path.Combine(_folder.Path, "ServiceDown.md")}: no '## Impact on trading' section; no '## First checks' section; no '## Actions' section; no '## Escalation' section",
            warning.Message);
        // Served all the same.
        var page = await _service!.CreateClient().GetStringAsync("/runbooks/ServiceDown");
        Assert.Contains("<h1 id=\"servicedown\">ServiceDown</h1>", page);
    }

    [Fact]
    public async Task Without_the_folder_the_service_starts_with_one_warning_and_the_index_says_none_are_shipped()
    {
        var missing = Path.Combine(_folder.Path, "nowhere");

        var (response, body) = await Get("/runbooks", missing);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("<p>No runbooks are shipped with this service.</p>", body);
        Assert.Single(_logs.Warnings, w => w.EventId == 6102 && w.Message.Contains(missing));
        Assert.Equal(HttpStatusCode.NotFound, (await _service!.CreateClient().GetAsync("/runbooks/HighDrawdown")).StatusCode);
    }

    private static List<string> Links(string html) => Href().Matches(html).Select(m => m.Groups[1].Value).ToList();

    [GeneratedRegex("<li><a href=\"([^\"]*)\">")]
    private static partial Regex Href();
}
