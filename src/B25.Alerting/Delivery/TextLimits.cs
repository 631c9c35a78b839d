using System.Globalization;

namespace B25.Alerting.Delivery;

/// <summary>
/// Cuts text to a vendor's limit without cutting a character in two. A cut between the halves of a
/// surrogate pair leaves a lone surrogate, which JSON encoders and vendors turn into U+FFFD (half an
/// emoji shows as �); a cut inside a grapheme cluster (a flag, a ZWJ family, a letter and its combining
/// accent) shows another character than the one sent. Lengths are UTF-16 code units (string.Length):
/// never fewer than the characters or code points a vendor counts.
/// </summary>
internal static class TextLimits
{
    public const string Ellipsis = "…";

    /// <summary>
    /// A cluster that reaches further back than this from the limit (one letter under thousands of
    /// combining marks) is cut at a code point instead, so hostile text cannot empty a field.
    /// </summary>
    private const int MaxClusterBacktrack = 32;

    /// <summary><paramref name="value"/> if it fits in <paramref name="max"/> code units, else its longest whole-character prefix and "…".</summary>
    public static string Truncate(string? value, int max)
    {
        if (string.IsNullOrEmpty(value) || max <= 0) return "";
        if (value.Length <= max) return value;
        if (max <= Ellipsis.Length) return Ellipsis[..max];
        return string.Concat(value.AsSpan(0, CutIndex(value, max - Ellipsis.Length)), Ellipsis);
    }

    /// <summary>
    /// The largest index at most <paramref name="limit"/> where <paramref name="value"/> can be cut: the end of a
    /// grapheme cluster, or, when that lies more than a few code units back, the end of a code point (never
    /// inside a surrogate pair).
    /// </summary>
    public static int CutIndex(string value, int limit)
    {
        if (limit >= value.Length) return value.Length;
        if (limit <= 0) return 0;
        var cut = 0;
        while (cut < value.Length)
        {
            var next = cut + StringInfo.GetNextTextElementLength(value.AsSpan(cut));
            if (next > limit) break;
            cut = next;
        }
        if (limit - cut <= MaxClusterBacktrack) return cut;
        return char.IsLowSurrogate(value[limit]) && char.IsHighSurrogate(value[limit - 1]) ? limit - 1 : limit;
    }
}
