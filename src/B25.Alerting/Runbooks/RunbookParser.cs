using System.Text;
using System.Text.RegularExpressions;
using Markdig;
using Markdig.Extensions.AutoIdentifiers;
using Markdig.Renderers;
using Markdig.Syntax;
using Markdig.Syntax.Inlines;

namespace B25.Alerting.Runbooks;

/// <summary>
/// Reads one runbook: <c># &lt;AlertName&gt;</c>, a one-line summary paragraph, then the sections
/// <see cref="Sections"/> in that order (the format docs/runbooks/README.md describes). What does not fit is
/// reported as problems; the runbook is still served, since half a runbook beats none at 3 am.
/// </summary>
internal static partial class RunbookParser
{
    public static readonly IReadOnlyList<string> Sections = ["Meaning", "Impact on trading", "First checks", "Actions", "Escalation"];

    public const int MaxFirstActionLength = 140;

    // No raw HTML: runbook text is ours, but a page that cannot carry markup cannot carry a script either.
    // No generic attributes (UseAdvancedExtensions would add them: `{onclick=...}`).
    private static readonly MarkdownPipeline Pipeline = new MarkdownPipelineBuilder()
        .DisableHtml()
        .UsePipeTables()
        .UseAutoLinks()
        .UseAutoIdentifiers(AutoIdentifierOptions.GitHub)
        .Build();

    /// <summary>Prometheus' alert name syntax (a metric name without colons).</summary>
    public static bool IsAlertName(string name) => AlertName().IsMatch(name);

    /// <param name="alertName">The alert rule's name (the file name without .md).</param>
    /// <param name="file">Where the text was read, for <see cref="Runbook.File"/>.</param>
    /// <param name="markdown">The runbook.</param>
    /// <param name="grafanaUrl">Grafana's base URL, for <c>grafana:/d/&lt;uid&gt;</c> links; null: those links show as text.</param>
    public static (Runbook Runbook, IReadOnlyList<string> Problems) Parse(string alertName, string file, string markdown, string? grafanaUrl = null)
    {
        var problems = new List<string>();
        var document = Markdown.Parse(markdown, Pipeline);
        ResolveGrafanaLinks(document, grafanaUrl);
        var blocks = document.ToList();

        var title = alertName;
        var next = 0;
        if (blocks.Count > 0 && blocks[0] is HeadingBlock { Level: 1 } heading)
        {
            title = PlainText(heading.Inline);
            if (title != alertName) problems.Add($"the title is '# {title}', not '# {alertName}' (the file name)");
            next = 1;
        }
        else
        {
            problems.Add($"does not start with the title '# {alertName}'");
        }

        var summary = "";
        if (next < blocks.Count && blocks[next] is ParagraphBlock paragraph)
            summary = PlainText(paragraph.Inline);
        else
            problems.Add("no one-line summary paragraph under the title");

        var sections = SectionsOf(blocks, problems);
        var found = sections.Select(s => s.Name).Where(n => Sections.Contains(n, StringComparer.OrdinalIgnoreCase)).ToList();
        foreach (var missing in Sections.Where(s => !found.Contains(s, StringComparer.OrdinalIgnoreCase))) problems.Add($"no '## {missing}' section");
        var expected = Sections.Where(s => found.Contains(s, StringComparer.OrdinalIgnoreCase));
        if (!found.SequenceEqual(expected, StringComparer.OrdinalIgnoreCase))
            problems.Add($"sections out of order ({string.Join(", ", found)}); expected {string.Join(", ", Sections)}");
        foreach (var other in sections.Select(s => s.Name).Where(n => !Sections.Contains(n, StringComparer.OrdinalIgnoreCase)))
            problems.Add($"'## {other}' is not a section of a runbook (use ### inside one of {string.Join(", ", Sections)})");

        if (Section(sections, "First checks") is { } checks && !checks.Any(HasPromQl))
            problems.Add("'## First checks' has no ```promql block");

        string? firstAction = null;
        if (Section(sections, "Actions") is { } actions)
        {
            var list = actions.OfType<ListBlock>().FirstOrDefault();
            if (list is null)
                problems.Add("'## Actions' has no numbered list (its first item is the first action)");
            else if (!list.IsOrdered)
                problems.Add("'## Actions' starts with a bulleted list; number it (1. ...): its first item is the first action");
            else if (list.FirstOrDefault() is ListItemBlock { Count: > 0 } item && item[0] is ParagraphBlock action
                     && PlainText(action.Inline) is { Length: > 0 } text)
            {
                firstAction = text;
                if (actions[0] != list) problems.Add("'## Actions' does not start with its numbered list");
                if (list.OrderedStart is { } start && start != "1") problems.Add($"the numbered list of '## Actions' starts at {start}, not 1");
                problems.AddRange(FirstActionProblems(text, Source(markdown, action), item.Count));
            }
            else
            {
                problems.Add("the first item of '## Actions' is empty (it is the first action)");
            }
        }

        return (new Runbook(alertName, title, summary, firstAction, Render(document), file), problems);
    }

    /// <summary>
    /// The first action is shown alone in Slack and email, as it is written: one line, plain text, one imperative
    /// sentence of at most <see cref="MaxFirstActionLength"/> characters (docs/runbooks/README.md, "The first action").
    /// </summary>
    private static IEnumerable<string> FirstActionProblems(string text, string source, int blocksInItem)
    {
        if (blocksInItem > 1 || source.Contains('\n', StringComparison.Ordinal))
            yield return "the first action continues past its line (one line, nothing nested under it)";
        if (text.Length > MaxFirstActionLength)
            yield return $"the first action is {text.Length} characters, more than {MaxFirstActionLength}: '{text}'";
        if (source.IndexOfAny(['`', '*', '_', '[', ']', '<', '>', '|', '\\']) >= 0 || source.Contains("{{", StringComparison.Ordinal))
            yield return $"the first action has markup (none of ` * _ [ ] < > | \\ or {{{{): it is shown as plain text: '{source}'";
        if (!char.IsUpper(text[0]) || !text.EndsWith('.') || SentenceEnd().IsMatch(text[..^1]))
            yield return $"the first action is not one sentence (a capital letter first, a period last, no other sentence end): '{text}'";
    }

    /// <summary>The Markdown source of a block, as written (one line for a well-formed first action).</summary>
    private static string Source(string markdown, Block block) =>
        block.Span.Start >= 0 && block.Span.End < markdown.Length ? markdown.Substring(block.Span.Start, block.Span.Length).Trim() : "";

    /// <summary>
    /// <c>grafana:/d/&lt;uid&gt;?...</c> is a path under Grafana's root (the runbooks do not know its address):
    /// made absolute with Grafana:Url, or, when it is not set, the link's text without the link.
    /// </summary>
    private static void ResolveGrafanaLinks(MarkdownDocument document, string? grafanaUrl)
    {
        var root = Uri.TryCreate(grafanaUrl?.Trim(), UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? grafanaUrl!.Trim().TrimEnd('/')
            : null;
        foreach (var link in document.Descendants<LinkInline>().ToList())
        {
            if (link.Url is not { } url || !url.StartsWith("grafana:", StringComparison.OrdinalIgnoreCase)) continue;
            if (root is not null)
            {
                var path = url["grafana:".Length..];
                link.Url = root + (path.StartsWith('/') ? path : "/" + path);
                continue;
            }
            while (link.FirstChild is { } child)
            {
                child.Remove();
                link.InsertBefore(child);
            }
            link.Remove();
        }
    }

    /// <summary>The blocks under each level-2 heading, up to the next heading of level 1 or 2, in file order.</summary>
    private static List<(string Name, List<Block> Blocks)> SectionsOf(List<Block> blocks, List<string> problems)
    {
        var sections = new List<(string Name, List<Block> Blocks)>();
        List<Block>? current = null;
        foreach (var block in blocks)
        {
            if (block is HeadingBlock { Level: <= 2 } heading)
            {
                current = null;
                if (heading.Level != 2) continue;
                var name = PlainText(heading.Inline);
                if (sections.Any(s => s.Name.Equals(name, StringComparison.OrdinalIgnoreCase)))
                {
                    if (Sections.Contains(name, StringComparer.OrdinalIgnoreCase)) problems.Add($"'## {name}' appears twice");
                    continue;
                }
                sections.Add((name, current = []));
                continue;
            }
            current?.Add(block);
        }
        return sections;
    }

    private static List<Block>? Section(List<(string Name, List<Block> Blocks)> sections, string name) =>
        sections.FirstOrDefault(s => s.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Blocks;

    private static bool HasPromQl(Block block) =>
        block is FencedCodeBlock code ? string.Equals(code.Info, "promql", StringComparison.OrdinalIgnoreCase)
        : block is ContainerBlock container && container.Any(HasPromQl);

    private static string Render(MarkdownDocument document)
    {
        using var writer = new StringWriter();
        var renderer = new HtmlRenderer(writer) { LinkRewriter = SafeLink };
        Pipeline.Setup(renderer);
        renderer.Render(document);
        writer.Flush();
        return writer.ToString();
    }

    /// <summary>
    /// Every URL the page writes (links, images, autolinks): http, https and mailto links and relative ones pass;
    /// any other scheme becomes "#". A link to another runbook, by its served path (<c>/runbooks/ServiceDown</c>,
    /// the README's form) or as a file (<c>ServiceDown.md</c>), becomes a link relative to the page
    /// (<c>ServiceDown</c>), and <c>/runbooks</c> or <c>README.md</c> the index.
    /// </summary>
    internal static string SafeLink(string url)
    {
        var value = url.Trim();
        if (value.Any(char.IsControl)) return "#";
        var end = value.AsSpan().IndexOfAny(":/?#");
        if (end > 0 && value[end] == ':')
        {
            var scheme = value[..end];
            return scheme.Equals("http", StringComparison.OrdinalIgnoreCase) || scheme.Equals("https", StringComparison.OrdinalIgnoreCase)
                   || scheme.Equals("mailto", StringComparison.OrdinalIgnoreCase)
                ? value
                : "#";
        }
        // A runbook page's own links stay relative to it, so they also work behind a proxy that adds a path.
        if (ServedRunbook().Match(value) is { Success: true } served)
            return served.Groups["name"].Success ? served.Groups["name"].Value + served.Groups["fragment"].Value : "../runbooks" + served.Groups["fragment"].Value;
        var sibling = SiblingRunbook().Match(value);
        if (!sibling.Success) return value;
        var name = sibling.Groups["name"].Value;
        return (name.Equals("README", StringComparison.OrdinalIgnoreCase) ? "../runbooks" : name) + sibling.Groups["fragment"].Value;
    }

    /// <summary>The text of inlines without their markup (code spans keep their text), whitespace collapsed.</summary>
    internal static string PlainText(ContainerInline? inlines)
    {
        var text = new StringBuilder();
        Append(inlines, text);
        return Whitespace().Replace(text.ToString(), " ").Trim();
    }

    private static void Append(ContainerInline? container, StringBuilder text)
    {
        for (var inline = container?.FirstChild; inline is not null; inline = inline.NextSibling)
        {
            switch (inline)
            {
                case LiteralInline literal: text.Append(literal.Content.ToString()); break;
                case CodeInline code: text.Append(code.Content); break;
                case AutolinkInline link: text.Append(link.Url); break;
                case HtmlEntityInline entity: text.Append(entity.Transcoded.ToString()); break;
                case HtmlInline html: text.Append(html.Tag); break;
                case LineBreakInline: text.Append(' '); break;
                case ContainerInline inner: Append(inner, text); break;
            }
        }
    }

    [GeneratedRegex(@"^[a-zA-Z_][a-zA-Z0-9_]*$")]
    private static partial Regex AlertName();

    [GeneratedRegex(@"^(?:\./)?(?<name>[A-Za-z0-9_]+)\.md(?<fragment>#.*)?$", RegexOptions.IgnoreCase)]
    private static partial Regex SiblingRunbook();

    [GeneratedRegex(@"^/runbooks(?:/(?<name>[A-Za-z_][A-Za-z0-9_]*))?/?(?<fragment>#.*)?$")]
    private static partial Regex ServedRunbook();

    [GeneratedRegex(@"[.!?]\s")]
    private static partial Regex SentenceEnd();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
