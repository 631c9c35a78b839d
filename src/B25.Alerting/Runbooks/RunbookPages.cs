using System.Net;
using System.Text;

namespace B25.Alerting.Runbooks;

/// <summary>
/// The HTML of the runbook pages: plain, script-free, readable on a phone. Everything that is not the
/// runbook's own rendered Markdown is encoded here (alert names come from URLs).
/// </summary>
internal static class RunbookPages
{
    /// <summary>Pages carry no script and load nothing but their own inline style and images.</summary>
    public const string ContentSecurityPolicy =
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private const string Style =
        """
        :root{color-scheme:light dark}
        body{margin:0 auto;max-width:48rem;padding:1rem;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;overflow-wrap:anywhere}
        h1{font-size:1.6rem;line-height:1.2;margin:.5rem 0 1rem}
        h2{font-size:1.25rem;margin:1.75rem 0 .5rem;padding-bottom:.2rem;border-bottom:1px solid #8884}
        a{color:#1a5fb4}
        @media (prefers-color-scheme:dark){a{color:#78aeed}}
        code{font:.9em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
        pre{overflow-x:auto;padding:.75rem;border-radius:4px;background:#8882}
        table{display:block;overflow-x:auto;border-collapse:collapse}
        th,td{border:1px solid #8886;padding:.25rem .5rem}
        nav{margin:.25rem 0 1rem}
        ul.runbooks{list-style:none;padding:0}
        ul.runbooks li{margin:0 0 .9rem}
        ul.runbooks p{margin:.1rem 0 0}
        .muted{opacity:.75}
        """;

    public static string Index(IReadOnlyList<Runbook> runbooks, string pathBase)
    {
        var body = new StringBuilder();
        body.Append("<h1>Runbooks</h1>\n");
        if (runbooks.Count == 0)
        {
            body.Append("<p>No runbooks are shipped with this service.</p>\n");
        }
        else
        {
            body.Append("<p class=\"muted\">One per alert rule: what it means, what to check, what to do.</p>\n<ul class=\"runbooks\">\n");
            foreach (var runbook in runbooks)
            {
                body.Append("<li><a href=\"").Append(Encode(Href(pathBase, runbook.AlertName))).Append("\">")
                    .Append(Encode(runbook.AlertName)).Append("</a>");
                if (runbook.Summary.Length > 0) body.Append("<p>").Append(Encode(runbook.Summary)).Append("</p>");
                body.Append("</li>\n");
            }
            body.Append("</ul>\n");
        }
        return Layout("Runbooks", body.ToString());
    }

    public static string Page(Runbook runbook, string pathBase)
    {
        var back = BackLink(pathBase);
        return Layout($"{Encode(runbook.AlertName)} · Runbook", $"<nav>{back}</nav>\n<article>\n{runbook.Html}</article>\n<nav>{back}</nav>\n");
    }

    public static string NotFound(string name, Runbook? similar, string pathBase)
    {
        var body = new StringBuilder();
        body.Append("<nav>").Append(BackLink(pathBase)).Append("</nav>\n");
        body.Append("<h1>No runbook for ").Append(Encode(name)).Append("</h1>\n");
        body.Append("<p>There is no runbook named <code>").Append(Encode(name)).Append("</code>. Alert names are case-sensitive.</p>\n");
        if (similar is not null)
        {
            body.Append("<p>Did you mean <a href=\"").Append(Encode(Href(pathBase, similar.AlertName))).Append("\">")
                .Append(Encode(similar.AlertName)).Append("</a>?</p>\n");
        }
        body.Append("<p><a href=\"").Append(Encode(IndexHref(pathBase))).Append("\">See every runbook</a>.</p>\n");
        return Layout("No such runbook", body.ToString());
    }

    private static string BackLink(string pathBase) => $"<a class=\"back\" href=\"{Encode(IndexHref(pathBase))}\">&larr; All runbooks</a>";

    private static string IndexHref(string pathBase) => pathBase + "/runbooks";

    private static string Href(string pathBase, string alertName) => pathBase + RunbookLibrary.PagePath(alertName);

    private static string Encode(string text) => WebUtility.HtmlEncode(text);

    /// <param name="title">HTML: already encoded.</param>
    /// <param name="body">HTML.</param>
    private static string Layout(string title, string body) =>
        $"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="no-referrer">
        <title>{title} · B25 Alerting</title>
        <style>
        {Style}
        </style>
        </head>
        <body>
        {body}</body>
        </html>

        """;
}
