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
        // Most alert text holds none of the three: it is returned as it is, without a copy.
        var first = value.AsSpan().IndexOfAny('&', '<', '>');
        if (first < 0) return value;
        var builder = new StringBuilder(value.Length + 16);
        builder.Append(value, 0, first);
        for (var i = first; i < value.Length; i++)
        {
            switch (value[i])
            {
                case '&': builder.Append("&amp;"); break;
                case '<': builder.Append("&lt;"); break;
                case '>': builder.Append("&gt;"); break;
                default: builder.Append(value[i]); break;
            }
        }
        return builder.ToString();
    }

    /// <summary>A link only for absolute http(s) URLs; anything else is shown as escaped text.</summary>
    public static string Link(string? url, string text)
    {
        if (Hrefs.WebUri(url) is not { } uri) return "";
        var safeUrl = uri.AbsoluteUri.Replace("|", "%7C").Replace("<", "%3C").Replace(">", "%3E").Replace("&", "&amp;");
        return $"<{safeUrl}|{Escape(text)}>";
    }

    /// <summary>
    /// At most <paramref name="max"/> characters, cut at a whole character (<see cref="TextLimits"/>) and never
    /// inside an entity (<c>&amp;amp;</c>) or a control sequence or link (<c>&lt;url|text&gt;</c>): Slack would
    /// show half of one as raw text. Alert data is escaped, so every '&lt;' and '&amp;' in the text is one of those.
    /// </summary>
    public static string Truncate(string value, int max)
    {
        if (value.Length <= max) return value;
        if (max <= TextLimits.Ellipsis.Length) return TextLimits.Truncate(value, max);
        var cut = TextLimits.CutIndex(value, max - TextLimits.Ellipsis.Length);
        if (cut > 0)
        {
            var open = value.LastIndexOf('<', cut - 1);
            if (open >= 0 && value.IndexOf('>', open, cut - open) < 0) cut = open;
        }
        if (cut > 0)
        {
            var entity = value.LastIndexOf('&', cut - 1);
            if (entity >= 0 && cut - entity < 5 && value.IndexOf(';', entity, cut - entity) < 0) cut = entity;
        }
        return string.Concat(value.AsSpan(0, cut), TextLimits.Ellipsis);
    }
}
