using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace B25.Stack.Tests;

/// <summary>An alerting rule of prometheus/alerts/*.yml, as the runbook checks need it.</summary>
internal sealed record AlertRule(string File, string Name, string Expr, string? For, string? RunbookUrl)
{
    public override string ToString() => $"{Repo.Relative(File)}: {Name}";

    public static string Folder => Repo.PathOf("prometheus", "alerts");

    public static IReadOnlyList<AlertRule> LoadAll()
    {
        var rules = new List<AlertRule>();
        foreach (var file in Directory.EnumerateFiles(Folder, "*.yml").Order(StringComparer.Ordinal))
        {
            foreach (var group in Repo.LoadYaml(file).Items("groups"))
            {
                foreach (var rule in group.Items("rules"))
                {
                    if (rule.Str("alert") is not { } name) continue;
                    rules.Add(new AlertRule(file, name, rule.Str("expr") ?? "", rule.Str("for"),
                        rule.Get("annotations").Str("runbook_url")));
                }
            }
        }
        return rules;
    }
}

/// <summary>A fenced code block of a runbook: its info string (language) and its text.</summary>
internal sealed record CodeBlock(string Language, string Text, int Line);

/// <summary>A level-2 section of a runbook: its heading, its lines outside code fences, its code blocks.</summary>
internal sealed record RunbookSection(string Heading, int Line, IReadOnlyList<(int Line, string Text)> Lines, IReadOnlyList<CodeBlock> Blocks);

/// <summary>
/// docs/runbooks/&lt;AlertName&gt;.md read line by line, the way the service reads it: the title,
/// the summary paragraph, and the level-2 sections. Lines inside ``` fences are never headings or
/// list items.
/// </summary>
internal sealed partial class Runbook
{
    public static readonly string[] SectionOrder = ["Meaning", "Impact on trading", "First checks", "Actions", "Escalation"];

    private Runbook(string path, string[] lines)
    {
        Path = path;
        Lines = lines;
        Parse();
    }

    public string Path { get; }

    public string Name => System.IO.Path.GetFileNameWithoutExtension(Path);

    public string File => Repo.Relative(Path);

    public string[] Lines { get; }

    /// <summary>Text of line 1 after "# ", or null when line 1 is not a level-1 heading.</summary>
    public string? Title { get; private set; }

    /// <summary>Non-blank lines between the title and the first level-2 heading (1-based line, text).</summary>
    public List<(int Line, string Text)> Preamble { get; } = [];

    public List<RunbookSection> Sections { get; } = [];

    /// <summary>Every line outside code fences (1-based line, text), for link checks.</summary>
    public List<(int Line, string Text)> ProseLines { get; } = [];

    public List<CodeBlock> Blocks { get; } = [];

    public RunbookSection? Section(string heading) => Sections.FirstOrDefault(s => s.Heading == heading);

    public static string Folder => Repo.PathOf("docs", "runbooks");

    public static IReadOnlyList<Runbook> LoadAll() =>
        Directory.EnumerateFiles(Folder, "*.md")
            .Where(f => System.IO.Path.GetFileName(f) != "README.md")
            .Order(StringComparer.Ordinal)
            .Select(f => new Runbook(f, System.IO.File.ReadAllLines(f)))
            .ToList();

    public static Runbook FromText(string name, string text) =>
        new(System.IO.Path.Combine(Folder, name + ".md"), text.Replace("\r\n", "\n").Split('\n'));

    /// <summary>
    /// The first action, by the convention of docs/runbooks/README.md: the Actions section starts
    /// with "1. "; the text after it is the first action. Returns the problems instead when there is
    /// no such line.
    /// </summary>
    public (string? Action, IReadOnlyList<string> Problems) FirstAction()
    {
        var problems = new List<string>();
        var actions = Section("Actions");
        if (actions is null) return (null, ["no ## Actions section"]);
        var prose = actions.Lines.Where(l => l.Text.Trim().Length > 0).ToList();
        if (prose.Count == 0 || !prose[0].Text.StartsWith("1. ", StringComparison.Ordinal))
        {
            return (null, ["## Actions does not start with an ordered list whose first line is \"1. <first action>\""]);
        }
        var text = prose[0].Text[3..].Trim();
        // The item is the one line: the next non-blank line is item 2 (or the section ends).
        if (prose.Count > 1 && !prose[1].Text.StartsWith("2. ", StringComparison.Ordinal))
        {
            problems.Add($"line {prose[1].Line}: the first action continues past its line (the next line must start with \"2. \")");
        }
        // A fence right after item 1 would be nested content of item 1.
        if (actions.Blocks.Any(b => b.Line > prose[0].Line && (prose.Count == 1 || b.Line < prose[1].Line)))
        {
            problems.Add("a code block belongs to the first action");
        }
        var length = text.EnumerateRunes().Count();
        if (length == 0) problems.Add("the first action is empty");
        if (length > 140) problems.Add($"the first action is {length} characters long (at most 140)");
        if (MarkupCharacter().Match(text) is { Success: true } markup)
        {
            problems.Add($"the first action holds Markdown or HTML markup (\"{markup.Value}\"): it is shown as plain text");
        }
        if (text.Contains("{{", StringComparison.Ordinal)) problems.Add("the first action holds template braces {{");
        if (text.Length > 0 && !char.IsUpper(text[0])) problems.Add("the first action does not start with a capital letter");
        if (!text.EndsWith('.')) problems.Add("the first action does not end with a period");
        if (SentenceEnd().IsMatch(text.TrimEnd('.'))) problems.Add("the first action is more than one sentence");
        return (text, problems);
    }

    private void Parse()
    {
        var inFence = false;
        string fenceLanguage = "";
        var fenceStart = 0;
        var fenceText = new List<string>();
        string? heading = null;
        var headingLine = 0;
        var sectionLines = new List<(int, string)>();
        var sectionBlocks = new List<CodeBlock>();

        void CloseSection()
        {
            if (heading is not null) Sections.Add(new RunbookSection(heading, headingLine, sectionLines.ToList(), sectionBlocks.ToList()));
            sectionLines.Clear();
            sectionBlocks.Clear();
        }

        for (var i = 0; i < Lines.Length; i++)
        {
            var line = Lines[i];
            var number = i + 1;
            var fence = Fence().Match(line);
            if (fence.Success)
            {
                if (!inFence)
                {
                    inFence = true;
                    fenceLanguage = fence.Groups["lang"].Value;
                    fenceStart = number;
                    fenceText.Clear();
                }
                else if (fence.Groups["lang"].Value.Length == 0)
                {
                    inFence = false;
                    var block = new CodeBlock(fenceLanguage, string.Join("\n", fenceText), fenceStart);
                    Blocks.Add(block);
                    if (heading is not null) sectionBlocks.Add(block);
                }
                continue;
            }
            if (inFence)
            {
                fenceText.Add(line);
                continue;
            }
            ProseLines.Add((number, line));
            if (i == 0)
            {
                if (line.StartsWith("# ", StringComparison.Ordinal)) Title = line[2..];
                continue;
            }
            if (line.StartsWith("## ", StringComparison.Ordinal))
            {
                CloseSection();
                heading = line[3..].Trim();
                headingLine = number;
                continue;
            }
            if (heading is null)
            {
                if (line.Trim().Length > 0) Preamble.Add((number, line));
            }
            else
            {
                sectionLines.Add((number, line));
            }
        }
        CloseSection();
    }

    /// <summary>PromQL expressions of the ```promql blocks: separated by blank lines within a block.</summary>
    public IEnumerable<(CodeBlock Block, string Expr)> PromQlExpressions() =>
        Blocks.Where(b => b.Language == "promql")
            .SelectMany(b => BlankLines().Split(b.Text).Select(e => e.Trim()).Where(e => e.Length > 0).Select(e => (b, e)));

    /// <summary>Markdown link targets outside code fences: [text](target).</summary>
    public IEnumerable<(int Line, string Target)> Links() =>
        ProseLines.SelectMany(l => MarkdownLink().Matches(l.Text).Select(m => (l.Line, m.Groups["target"].Value)));

    public static string NormalizeWhitespace(string text) => Whitespace().Replace(text, " ").Trim();

    [GeneratedRegex(@"^\s*```\s*(?<lang>[A-Za-z0-9_+-]*)\s*$")]
    private static partial Regex Fence();

    [GeneratedRegex(@"\n[ \t]*\n")]
    private static partial Regex BlankLines();

    [GeneratedRegex(@"\[[^\]]*\]\((?<target>[^)\s]*)\)")]
    private static partial Regex MarkdownLink();

    [GeneratedRegex(@"[`*_\[\]<>|\\]")]
    private static partial Regex MarkupCharacter();

    [GeneratedRegex(@"[.!?]\s")]
    private static partial Regex SentenceEnd();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
