using System.Globalization;
using System.Text;

namespace B25.Alerting.Delivery.Presentation;

/// <summary>
/// Control characters in alert data (NUL, ESC, the C1 range, bidirectional overrides) are shown as visible escapes
/// (<c>\u0000</c>) before any channel renders them: Slack and mail clients drop, mangle or obey them, and a
/// terminal-style escape in a label must not recolour or reorder a page. Labels are one line: line breaks and
/// tabs are escaped too; annotations keep their line breaks and tabs (descriptions are written on several lines).
/// </summary>
internal static class ControlCharacters
{
    public static string Escape(string text, bool multiline = false)
    {
        if (string.IsNullOrEmpty(text)) return text; // a label given as null stays what the intake let through
        var i = 0;
        while (i < text.Length && !NeedsEscape(text, i, multiline)) i++;
        if (i == text.Length) return text;
        var result = new StringBuilder(text.Length + 8).Append(text, 0, i);
        for (; i < text.Length; i++)
        {
            var c = text[i];
            if (multiline && c == '\r' && i + 1 < text.Length && text[i + 1] == '\n') continue; // CRLF is a line break
            if (NeedsEscape(text, i, multiline)) result.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
            else result.Append(c);
        }
        return result.ToString();
    }

    public static IReadOnlyDictionary<string, string> Escape(IReadOnlyDictionary<string, string> map, bool multiline = false)
    {
        if (map.All(p => ReferenceEquals(Escape(p.Key), p.Key) && ReferenceEquals(Escape(p.Value, multiline), p.Value))) return map;
        var escaped = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in map) escaped[Escape(key)] = Escape(value, multiline);
        return escaped;
    }

    /// <summary>The incident with every label and annotation escaped.</summary>
    public static IncidentView Escape(IncidentView incident) => incident with
    {
        GroupLabels = Escape(incident.GroupLabels),
        CommonLabels = Escape(incident.CommonLabels),
        CommonAnnotations = Escape(incident.CommonAnnotations, multiline: true),
        Alerts = incident.Alerts.Select(a => a with
        {
            Labels = Escape(a.Labels),
            Annotations = Escape(a.Annotations, multiline: true),
        }).ToList(),
    };

    private static bool NeedsEscape(string text, int i, bool multiline)
    {
        var c = text[i];
        if (multiline && c is '\n' or '\t') return false; // (a CR before LF is dropped by Escape: it stops the fast path here)
        // C0, DEL, C1; bidirectional embeddings, overrides and isolates; the line and paragraph separators.
        return char.IsControl(c) || c is >= '\u202A' and <= '\u202E' or >= '\u2066' and <= '\u2069' or '\u2028' or '\u2029';
    }
}
