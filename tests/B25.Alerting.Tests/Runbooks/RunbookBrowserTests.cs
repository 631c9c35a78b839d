using System.Text.RegularExpressions;
using B25.Alerting.Tests.Support;

namespace B25.Alerting.Tests.Runbooks;

/// <summary>The runbook pages in a real browser (Debian's chromium), served by the service as a process on 127.0.0.1.</summary>
public sealed partial class RunbookBrowserTests : IAsyncLifetime
{
    private readonly string _database = Path.Combine(Path.GetTempPath(), $"b25-runbooks-{Guid.NewGuid():N}.db");
    private ServiceProcess? _service;

    public async Task InitializeAsync() =>
        _service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Webhook__BearerToken"] = AlertingFactory.Token,
            ["Storage__ConnectionString"] = $"Data Source={_database}",
            ["Runbooks__Path"] = RunbookFiles.Samples,
            ["Logging__LogLevel__Default"] = "Warning",
        });

    public async Task DisposeAsync()
    {
        if (_service is not null) await _service.DisposeAsync();
        foreach (var suffix in new[] { "", "-wal", "-shm", ".lock" })
            try { File.Delete(_database + suffix); } catch (IOException) { }
    }

    [Fact]
    public async Task The_index_links_each_runbook_and_its_page_shows_the_runbook_with_a_link_back()
    {
        var index = await Chromium.DumpDomAsync($"{_service!.BaseUrl}/runbooks");

        Assert.Contains("<h1>Runbooks</h1>", index);
        var links = IndexLink().Matches(index).ToDictionary(m => m.Groups["name"].Value, m => m.Groups["href"].Value);
        Assert.Equal(["HighDrawdown", "OrderBookStale"], links.Keys.Order());

        // Follow the link as the browser resolves it against the index's address.
        var page = await Chromium.DumpDomAsync(new Uri(new Uri($"{_service.BaseUrl}/runbooks"), links["OrderBookStale"]).ToString());

        Assert.Contains("<h1 id=\"orderbookstale\">OrderBookStale</h1>", page);
        Assert.Contains("<h2 id=\"actions\">Actions</h2>", page);
        var back = BackLink().Match(page);
        Assert.True(back.Success, "no link back to the index in the page's DOM:\n" + page);
        Assert.Equal($"{_service.BaseUrl}/runbooks", new Uri(new Uri($"{_service.BaseUrl}/runbooks/OrderBookStale"), back.Groups["href"].Value).ToString());
    }

    [Fact]
    public async Task A_hostile_name_in_the_address_builds_no_element_in_the_browser()
    {
        var dom = await Chromium.DumpDomAsync($"{_service!.BaseUrl}/runbooks/{Uri.EscapeDataString("<img src=x onerror=alert(1)>\"'><b>x")}");

        Assert.Contains("<h1>No runbook for &lt;img src=x onerror=alert(1)&gt;\"'&gt;&lt;b&gt;x</h1>", dom);
        Assert.DoesNotContain("<img", dom);
        Assert.DoesNotContain("<b>", dom);
        Assert.Contains("<a href=\"/runbooks\">See every runbook</a>", dom);
    }

    [GeneratedRegex("<li><a href=\"(?<href>[^\"]+)\">(?<name>[A-Za-z0-9_]+)</a>")]
    private static partial Regex IndexLink();

    [GeneratedRegex("<a class=\"back\" href=\"(?<href>[^\"]+)\">← All runbooks</a>")]
    private static partial Regex BackLink();
}
