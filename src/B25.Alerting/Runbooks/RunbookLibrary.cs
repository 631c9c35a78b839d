using System.Collections.Frozen;
using B25.Alerting.Hosting;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Runbooks;

/// <summary>
/// The runbooks shipped with the service (<see cref="RunbookOptions.Path"/>), read, checked and rendered once
/// at start; afterwards only looked up, from any thread. A malformed runbook or a missing folder is a warning
/// at start, never a refused start: a page without its runbook still goes out.
/// </summary>
internal sealed partial class RunbookLibrary
{
    private readonly FrozenDictionary<string, Runbook> _byName;
    private readonly PublicLinks _links;

    public RunbookLibrary(IOptions<RunbookOptions> options, PublicLinks links, ILogger<RunbookLibrary> logger)
    {
        _links = links;
        Folder = Path.GetFullPath(options.Value.ResolvedPath);
        var runbooks = new List<Runbook>();
        var problems = new List<RunbookProblem>();
        if (!Directory.Exists(Folder))
        {
            LogNoFolder(logger, Folder);
        }
        else
        {
            foreach (var file in Directory.EnumerateFiles(Folder, "*.md").Order(StringComparer.Ordinal))
            {
                var fileName = Path.GetFileName(file);
                if (fileName.Equals("README.md", StringComparison.OrdinalIgnoreCase)) continue; // the format's description, not a runbook
                var found = Load(file, fileName, options.Value.GrafanaUrl);
                if (found.Runbook is not null) runbooks.Add(found.Runbook);
                if (found.Problems.Count == 0) continue;
                problems.AddRange(found.Problems.Select(p => new RunbookProblem(fileName, p)));
                LogMalformed(logger, file, string.Join("; ", found.Problems));
            }
            if (runbooks.Count == 0) LogEmptyFolder(logger, Folder);
            else LogLoaded(logger, runbooks.Count, Folder, problems.Select(p => p.File).Distinct().Count());
        }
        All = runbooks;
        Problems = problems;
        _byName = runbooks.ToFrozenDictionary(r => r.AlertName, StringComparer.Ordinal);
    }

    /// <summary>The folder the runbooks were read from (absolute).</summary>
    public string Folder { get; }

    /// <summary>Every runbook, by alert name (ordinal order).</summary>
    public IReadOnlyList<Runbook> All { get; }

    /// <summary>What was wrong with the files at start (also logged as warnings).</summary>
    public IReadOnlyList<RunbookProblem> Problems { get; }

    /// <summary>The runbook of the alert rule named exactly <paramref name="alertName"/> (case-sensitive, as in Prometheus).</summary>
    public Runbook? Find(string? alertName) =>
        alertName is not null && _byName.TryGetValue(alertName, out var runbook) ? runbook : null;

    /// <summary>The first action of the alert's runbook (plain text, one short sentence), or null when there is none.</summary>
    public string? FirstAction(string? alertName) => Find(alertName)?.FirstAction;

    /// <summary>
    /// The link to the alert's runbook page, absolute against Service:PublicUrl (relative when it is not set);
    /// null when no runbook is shipped for that alert, so a message never carries a link that answers 404.
    /// </summary>
    public string? Url(string? alertName) => Find(alertName) is { } runbook ? _links.Absolute(PagePath(runbook.AlertName)) : null;

    /// <summary>The path of a runbook page, relative to the service's root.</summary>
    public static string PagePath(string alertName) => "/runbooks/" + Uri.EscapeDataString(alertName);

    /// <summary>A runbook whose name differs from <paramref name="name"/> only by case or a trailing ".md": a "did you mean".</summary>
    public Runbook? Similar(string name)
    {
        var stem = name.EndsWith(".md", StringComparison.OrdinalIgnoreCase) ? name[..^3] : name;
        return Find(stem) ?? All.FirstOrDefault(r => r.AlertName.Equals(stem, StringComparison.OrdinalIgnoreCase));
    }

    private static (Runbook? Runbook, IReadOnlyList<string> Problems) Load(string file, string fileName, string? grafanaUrl)
    {
        var alertName = Path.GetFileNameWithoutExtension(fileName);
        if (!RunbookParser.IsAlertName(alertName))
            return (null, [$"'{alertName}' is not an alert name (letters, digits and '_'), so no alert can use it; not served"]);
        string markdown;
        try
        {
            markdown = File.ReadAllText(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (null, [$"cannot be read ({ex.Message}); not served"]);
        }
        return RunbookParser.Parse(alertName, file, markdown, grafanaUrl);
    }

    [LoggerMessage(EventId = 6101, Level = LogLevel.Warning, Message = "Runbook {File}: {Problems}")]
    private static partial void LogMalformed(ILogger logger, string file, string problems);

    [LoggerMessage(EventId = 6102, Level = LogLevel.Warning, Message = "Runbooks: the folder {Folder} does not exist (Runbooks:Path); GET /runbooks lists none and messages carry no runbook link or first action")]
    private static partial void LogNoFolder(ILogger logger, string folder);

    [LoggerMessage(EventId = 6103, Level = LogLevel.Warning, Message = "Runbooks: no runbook (<AlertName>.md) in {Folder} (Runbooks:Path); GET /runbooks lists none and messages carry no runbook link or first action")]
    private static partial void LogEmptyFolder(ILogger logger, string folder);

    [LoggerMessage(EventId = 6104, Level = LogLevel.Information, Message = "Runbooks: {Count} from {Folder}, {Malformed} of them with problems (logged above)")]
    private static partial void LogLoaded(ILogger logger, int count, string folder, int malformed);
}
