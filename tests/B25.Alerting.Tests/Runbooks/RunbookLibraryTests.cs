using B25.Alerting.Hosting;
using B25.Alerting.Runbooks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Tests.Runbooks;

public sealed class RunbookLibraryTests : IDisposable
{
    private readonly RunbookFolder _folder = new();
    private readonly LogCapture _logs = new();

    public void Dispose()
    {
        _folder.Dispose();
        _logs.Dispose();
    }

    private RunbookLibrary Load(string? folder = null, string? publicUrl = "https://alerting.b25.example")
    {
        var links = new PublicLinks(Options.Create(new ServiceOptions { PublicUrl = publicUrl }), new Logger<PublicLinks>(new LoggerFactory([_logs])));
        return new RunbookLibrary(Options.Create(new RunbookOptions { Path = folder ?? _folder.Path }), links, new Logger<RunbookLibrary>(new LoggerFactory([_logs])));
    }

    [Fact]
    public void Loads_every_runbook_of_the_folder_by_exact_name_and_skips_the_readme()
    {
        _folder.Add("README.md", "# Runbooks\n\nHow to write one.\n");

        var library = Load();

        Assert.Equal(["HighDrawdown", "OrderBookStale"], library.All.Select(r => r.AlertName));
        Assert.Empty(library.Problems);
        Assert.Empty(_logs.Warnings);
        Assert.Equal("OrderBookStale", library.Find("OrderBookStale")?.AlertName);
        Assert.Null(library.Find("orderbookstale"));
        Assert.Null(library.Find("README"));
        Assert.Equal("Pause quoting on the stale symbol in the strategy engine until its book updates again.", library.FirstAction("OrderBookStale"));
        Assert.Null(library.FirstAction("NoSuchAlert"));
        Assert.Equal("OrderBookStale", library.Similar("orderbookSTALE")?.AlertName);
        Assert.Equal("OrderBookStale", library.Similar("OrderBookStale.md")?.AlertName);
        Assert.Null(library.Similar("OrderBook"));
    }

    [Fact]
    public void Url_is_the_absolute_page_link_and_null_when_no_runbook_is_shipped()
    {
        Assert.Equal("https://alerting.b25.example/runbooks/HighDrawdown", Load().Url("HighDrawdown"));
        Assert.Null(Load().Url("NoSuchAlert"));
        Assert.Null(Load().Url(null));
        Assert.Equal("https://b25.example/alerting/runbooks/HighDrawdown", Load(publicUrl: "https://b25.example/alerting/").Url("HighDrawdown"));
        Assert.Equal("/runbooks/HighDrawdown", Load(publicUrl: null).Url("HighDrawdown"));
    }

    [Fact]
    public void A_malformed_runbook_is_one_warning_naming_the_file_and_what_is_missing_and_is_still_served()
    {
        _folder.Add("ServiceDown.md", "# ServiceDown\n\nA service is down.\n\n## Meaning\n\nIt is down.\n\n## Actions\n\n- Restart it.\n");
        _folder.Add("not-an-alert.md", "# not-an-alert\n");

        var library = Load();

        var warnings = _logs.Warnings.Where(w => w.EventId == 6101).Select(w => w.Message).ToList();
        Assert.Equal(2, warnings.Count);
        Assert.Contains(warnings, w => w.StartsWith($"Runbook {Path.Combine(_folder.Path, "ServiceDown.md")}: ", StringComparison.Ordinal)
                                       && w.Contains("no '## Impact on trading' section") && w.Contains("no '## First checks' section")
                                       && w.Contains("no '## Escalation' section") && w.Contains("'## Actions' starts with a bulleted list"));
        Assert.Contains(warnings, w => w.Contains("not-an-alert.md") && w.Contains("is not an alert name"));
        Assert.Equal("A service is down.", library.Find("ServiceDown")?.Summary);
        Assert.Null(library.FirstAction("ServiceDown"));
        Assert.Equal(["HighDrawdown", "OrderBookStale", "ServiceDown"], library.All.Select(r => r.AlertName));
        Assert.Equal(["ServiceDown.md", "not-an-alert.md"], library.Problems.Select(p => p.File).Distinct());
    }

    [Fact]
    public void A_missing_folder_is_one_warning_and_an_empty_library()
    {
        var missing = Path.Combine(_folder.Path, "nowhere");

        var library = Load(missing);

        Assert.Empty(library.All);
        Assert.Null(library.Find("HighDrawdown"));
        var warning = Assert.Single(_logs.Warnings, w => w.Category == typeof(RunbookLibrary).FullName);
        Assert.Equal($"Runbooks: the folder {missing} does not exist (Runbooks:Path); GET /runbooks lists none and messages carry no runbook link or first action", warning.Message);
    }

    [Fact]
    public void The_default_folder_is_runbooks_next_to_the_binary() =>
        Assert.Equal(Path.Combine(AppContext.BaseDirectory, "runbooks"), new RunbookOptions().ResolvedPath);
}
