using System.Text;

namespace B25.Alerting.Delivery.Slack;

/// <summary>
/// Alert data is data: Slack's control sequences (<c>&lt;!channel&gt;</c>, <c>&lt;@U123&gt;</c>,
/// <c>&lt;http://x|y&gt;</c>) come from '&lt;', '&gt;' and '&amp;', which Slack asks to be escaped.
/// </summary>
internal static class SlackText
{
    public static string Escape(string? value)
    {
        if (string.IsNullOrEmpty(value)) return "";
        var builder = new StringBuilder(value.Length + 8);
        foreach (var c in value)
        {
            builder.Append(c switch
            {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                _ => c.ToString(),
            });
        }
        return builder.ToString();
    }

    /// <summary>A link only for absolute http(s) URLs; anything else is shown as escaped text.</summary>
    public static string Link(string? url, string text)
    {
        if (string.IsNullOrWhiteSpace(url)
            || !Uri.TryCreate(url, UriKind.Absolute, out var uri)
            || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            return "";
        var safeUrl = uri.AbsoluteUri.Replace("|", "%7C").Replace("<", "%3C").Replace(">", "%3E").Replace("&", "&amp;");
        return $"<{safeUrl}|{Escape(text)}>";
    }

    public static string Truncate(string value, int max) =>
        value.Length <= max ? value : string.Concat(value.AsSpan(0, Math.Max(0, max - 1)), "…");
}
