namespace B25.Alerting.Tests.Runbooks;

/// <summary>Where the runbooks are: the repository's docs/runbooks, the samples next to these tests, and throwaway folders.</summary>
internal static class RunbookFiles
{
    public static readonly string RepoRoot = FindRepoRoot();

    /// <summary>The repository's runbooks (written by hand, one per alert rule).</summary>
    public static string Repository => Path.Combine(RepoRoot, "docs", "runbooks");

    /// <summary>Two well-formed runbooks (OrderBookStale, HighDrawdown) for the tests.</summary>
    public static string Samples => Path.Combine(RepoRoot, "tests", "B25.Alerting.Tests", "Runbooks", "Samples");

    public static string Sample(string alertName) => File.ReadAllText(Path.Combine(Samples, alertName + ".md"));

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "B25.Alerting.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no B25.Alerting.sln above {AppContext.BaseDirectory}");
    }
}

/// <summary>A throwaway runbook folder holding the samples, plus whatever a test adds.</summary>
internal sealed class RunbookFolder : IDisposable
{
    public RunbookFolder(bool withSamples = true)
    {
        Path = Directory.CreateTempSubdirectory("b25-runbooks-").FullName;
        if (!withSamples) return;
        foreach (var file in Directory.EnumerateFiles(RunbookFiles.Samples, "*.md"))
            File.Copy(file, System.IO.Path.Combine(Path, System.IO.Path.GetFileName(file)));
    }

    public string Path { get; }

    public RunbookFolder Add(string fileName, string markdown)
    {
        File.WriteAllText(System.IO.Path.Combine(Path, fileName), markdown);
        return this;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
