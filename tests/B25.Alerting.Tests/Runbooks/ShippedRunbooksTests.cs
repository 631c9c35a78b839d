using B25.Alerting.Hosting;
using B25.Alerting.Runbooks;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Tests.Runbooks;

/// <summary>The repository's runbooks (docs/runbooks) and the copy the build ships next to the service.</summary>
public sealed class ShippedRunbooksTests
{
    private static RunbookLibrary Load(string folder) =>
        new(Options.Create(new RunbookOptions { Path = folder }),
            new PublicLinks(Options.Create(new ServiceOptions { PublicUrl = "https://alerting.b25.example" }), NullLogger<PublicLinks>.Instance),
            NullLogger<RunbookLibrary>.Instance);

    private static string[] RunbookFileNames(string folder) =>
        Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder, "*.md").Select(f => Path.GetFileName(f)!)
                .Where(f => !f.Equals("README.md", StringComparison.OrdinalIgnoreCase)).Order(StringComparer.Ordinal).ToArray()
            : [];

    /// <summary>
    /// Every docs/runbooks/*.md but README.md is a well-formed runbook. (Before the runbooks exist in the repository
    /// there is nothing to check; the same check runs on the samples, below.)
    /// </summary>
    [Fact]
    public void Every_runbook_of_the_repository_parses_without_warnings()
    {
        var files = RunbookFileNames(RunbookFiles.Repository);

        var library = Load(RunbookFiles.Repository);

        Assert.True(library.Problems.Count == 0,
            "runbooks that do not fit the format (docs/runbooks/README.md):\n" + string.Join("\n", library.Problems.Select(p => $"{p.File}: {p.Problem}")));
        Assert.Equal(files.Select(Path.GetFileNameWithoutExtension), library.All.Select(r => r.AlertName));
        Assert.All(library.All, r => Assert.False(string.IsNullOrEmpty(r.FirstAction), $"{r.AlertName} has no first action"));
    }

    [Fact]
    public void The_sample_runbooks_parse_without_warnings()
    {
        var library = Load(RunbookFiles.Samples);

        Assert.Empty(library.Problems);
        Assert.Equal(["HighDrawdown", "OrderBookStale"], library.All.Select(r => r.AlertName));
    }

    /// <summary>The build copies docs/runbooks/*.md to runbooks/ next to the binary, the default Runbooks:Path.</summary>
    [Fact]
    public void The_build_ships_the_repository_runbooks_next_to_the_service()
    {
        var shipped = new RunbookOptions().ResolvedPath;

        Assert.Equal(RunbookFileNames(RunbookFiles.Repository), RunbookFileNames(shipped));
        foreach (var name in RunbookFileNames(shipped))
            Assert.Equal(File.ReadAllText(Path.Combine(RunbookFiles.Repository, name)), File.ReadAllText(Path.Combine(shipped, name)));
    }
}
