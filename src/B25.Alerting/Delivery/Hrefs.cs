using System.Text;

namespace B25.Alerting.Delivery;

/// <summary>Link targets as vendors must receive them: absolute http(s) URLs, percent-encoded.</summary>
internal static class Hrefs
{
    // RFC 3986: unreserved and reserved characters, and '%' of an escape. Everything else ('<', '>', '|', '"',
    // spaces, '\', '^', '`', '{', '}', controls, non-ASCII) is not allowed raw in a URI.
    private const string Allowed = "-._~:/?#[]@!$&'()*+,;=";

    /// <summary>
    /// <paramref name="value"/> (trimmed) when it is an absolute http or https URL, else null: the one test every
    /// link the service writes passes, so a javascript: or data: URL from an annotation stays out of every message.
    /// </summary>
    public static Uri? WebUri(string? value) =>
        !string.IsNullOrWhiteSpace(value) && Uri.TryCreate(value.Trim(), UriKind.Absolute, out var uri)
        && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            ? uri
            : null;

    /// <summary>
    /// <paramref name="url"/> percent-encoded where RFC 3986 asks it (the UTF-8 bytes of each character not
    /// allowed raw), otherwise as written; null when it is not an absolute http(s) URL, or longer than
    /// <paramref name="maxLength"/> once encoded: a cut URL leads nowhere.
    /// </summary>
    public static string? Http(string? url, int maxLength)
    {
        if (WebUri(url) is null) return null;
        url = url!.Trim();
        var href = new StringBuilder(url.Length + 16);
        for (var i = 0; i < url.Length; i++)
        {
            var c = url[i];
            if (char.IsAsciiLetterOrDigit(c) || Allowed.Contains(c) || (c == '%' && IsEscape(url, i)))
            {
                href.Append(c);
                continue;
            }
            var length = char.IsHighSurrogate(c) && i + 1 < url.Length && char.IsLowSurrogate(url[i + 1]) ? 2 : 1;
            foreach (var b in Encoding.UTF8.GetBytes(url.ToCharArray(i, length)))
                href.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            i += length - 1;
        }
        return href.Length <= maxLength ? href.ToString() : null;
    }

    private static bool IsEscape(string url, int i) =>
        i + 2 < url.Length && char.IsAsciiHexDigit(url[i + 1]) && char.IsAsciiHexDigit(url[i + 2]);
}
