using System.Text;

namespace B25.Alerting.Storage;

/// <summary>
/// The targets a delivery wake-up names, as one line per target ("channel TAB target"). Empty means
/// unknown: the listener looks at every target.
/// </summary>
internal static class WakePayload
{
    public static string Write(IReadOnlyCollection<(string Channel, string Target)>? targets, int maxLength)
    {
        if (targets is null || targets.Count == 0) return "";
        var text = new StringBuilder();
        foreach (var (channel, target) in targets)
        {
            if (channel.AsSpan().IndexOfAny('\t', '\n') >= 0 || target.AsSpan().IndexOfAny('\t', '\n') >= 0) return "";
            if (text.Length > 0) text.Append('\n');
            text.Append(channel).Append('\t').Append(target);
            if (text.Length > maxLength) return "";
        }
        return text.ToString();
    }

    public static IReadOnlyCollection<(string Channel, string Target)>? Read(string payload)
    {
        if (string.IsNullOrEmpty(payload)) return null;
        var targets = new List<(string, string)>();
        foreach (var line in payload.Split('\n'))
        {
            var tab = line.IndexOf('\t');
            if (tab <= 0) return null; // not ours, or damaged: look at every target
            targets.Add((line[..tab], line[(tab + 1)..]));
        }
        return targets;
    }
}
