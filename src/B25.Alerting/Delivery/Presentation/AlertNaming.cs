namespace B25.Alerting.Delivery.Presentation;

/// <summary>
/// Names alerts the way an on-call engineer tells them apart: by the labels that differ between the
/// alerts of one incident (OrderBookStale for BTCUSDT, ETHUSDT, ...), not by labels every alert of the
/// group shares, and never by operational labels (job, cluster, ...) a setting hides.
/// </summary>
internal sealed class AlertNaming(IReadOnlySet<string> hidden)
{
    /// <summary>Labels that rarely tell an engineer which alert it is: used only when nothing better is there.</summary>
    private static readonly HashSet<string> Weak = new(StringComparer.Ordinal) { "instance", "pod", "container", "namespace", "node" };

    /// <summary>Labels that are never part of a name: the name itself and the severity (shown on its own).</summary>
    private static readonly HashSet<string> NotNames = new(StringComparer.Ordinal) { "alertname", "severity" };

    public const int MaxNamingLabels = 3;

    public bool IsHidden(string key) => hidden.Contains(key) || NotNames.Contains(key);

    /// <summary>
    /// The label keys that tell the given alerts apart: those whose values differ between them (or that
    /// only some have). For a single alert, its visible labels outside <paramref name="groupLabels"/>.
    /// </summary>
    public IReadOnlyList<string> DistinguishingKeys(IReadOnlyCollection<IReadOnlyDictionary<string, string>> alerts,
        IReadOnlyDictionary<string, string> groupLabels)
    {
        if (alerts.Count == 0) return [];
        var keys = alerts.SelectMany(a => a.Keys).Distinct(StringComparer.Ordinal).Where(k => !IsHidden(k)).ToList();
        List<string> chosen;
        if (alerts.Count > 1)
        {
            var first = alerts.First();
            chosen = keys.Where(k =>
            {
                var value = first.GetValueOrDefault(k);
                return alerts.Any(a => a.GetValueOrDefault(k) != value);
            }).ToList();
        }
        else
        {
            chosen = keys.Where(k => !groupLabels.ContainsKey(k)).ToList();
        }
        // A weak label names an alert only when nothing stronger does (two hosts of one service).
        if (chosen.Any(k => !Weak.Contains(k))) chosen.RemoveAll(Weak.Contains);
        return chosen.Order(StringComparer.Ordinal).Take(MaxNamingLabels).ToList();
    }

    /// <summary>The labels of <paramref name="labels"/> under <paramref name="keys"/>, in that order, that it has.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Pick(IReadOnlyDictionary<string, string> labels, IReadOnlyList<string> keys) =>
        keys.Where(labels.ContainsKey).Select(k => new KeyValuePair<string, string>(k, labels[k])).ToList();

    /// <summary>"OrderBookStale symbol=BTCUSDT": the alert name and its distinguishing labels.</summary>
    public static string Name(IReadOnlyDictionary<string, string> labels, IReadOnlyList<string> keys)
    {
        var name = labels.GetValueOrDefault("alertname") is { Length: > 0 } n ? n : "alert";
        var picked = Pick(labels, keys);
        // Thread replies name alerts from the notification itself, not through IncidentPresenter: escape here too.
        return ControlCharacters.Escape(picked.Count == 0 ? name : $"{name} {string.Join(" ", picked.Select(l => $"{l.Key}={l.Value}"))}");
    }
}
