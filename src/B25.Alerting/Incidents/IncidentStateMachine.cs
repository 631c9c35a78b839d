using B25.Alerting.Webhooks;

namespace B25.Alerting.Incidents;

internal enum AlertState { Firing, Resolved }

internal enum TransitionKind
{
    /// <summary>Nothing new and no incident to repeat: e.g. only resolved alerts never seen firing.</summary>
    None,
    /// <summary>An open incident, every alert already known in the same state.</summary>
    Repeat,
    Open,
    Change,
    Close,
}

/// <summary>What one notification does to its alert group.</summary>
internal sealed record IncidentTransition(
    TransitionKind Kind,
    IReadOnlyList<AlertKey> Joined,
    IReadOnlyList<AlertKey> Resolved,
    IReadOnlyList<AlertKey> RememberedResolved)
{
    public bool ChangesIncident => Kind is TransitionKind.Open or TransitionKind.Change or TransitionKind.Close;
}

/// <summary>
/// The incident state machine of architecture.md, as a pure function of what is known about the group
/// and the alerts of one notification. Content wins over arrival order: an occurrence
/// (fingerprint, startsAt) that is known resolved never fires again.
/// </summary>
internal static class IncidentStateMachine
{
    /// <param name="known">Every occurrence known for the group that appears in the notification or
    /// belongs to the open incident, with its state.</param>
    /// <param name="openIncidentAlerts">The occurrences of the open incident (empty when none is open).</param>
    /// <param name="hasOpenIncident">Whether the group has an open incident.</param>
    /// <param name="alerts">The alerts of the notification.</param>
    public static IncidentTransition Apply(
        IReadOnlyDictionary<AlertKey, AlertState> known,
        IReadOnlyCollection<AlertKey> openIncidentAlerts,
        bool hasOpenIncident,
        IEnumerable<(AlertKey Key, AlertState State)> alerts)
    {
        var joined = new List<AlertKey>();
        var resolved = new List<AlertKey>();
        var remembered = new List<AlertKey>();
        var seen = new HashSet<AlertKey>();

        foreach (var (key, state) in alerts)
        {
            if (!seen.Add(key)) continue; // the same occurrence twice in one body: first copy counts
            var isKnown = known.TryGetValue(key, out var current);
            switch (state)
            {
                case AlertState.Firing when !isKnown:
                    joined.Add(key);
                    break;
                case AlertState.Resolved when isKnown && current == AlertState.Firing:
                    resolved.Add(key);
                    break;
                case AlertState.Resolved when !isKnown:
                    remembered.Add(key);
                    break;
                // Firing copy of a known occurrence (firing or resolved), or resolved again: no change.
            }
        }

        if (!hasOpenIncident)
        {
            // Only firing alerts open an incident; a resolved alert alone is remembered, not paged.
            return joined.Count > 0
                ? new IncidentTransition(TransitionKind.Open, joined, [], remembered)
                : new IncidentTransition(TransitionKind.None, [], [], remembered);
        }

        if (joined.Count == 0 && resolved.Count == 0)
            return new IncidentTransition(TransitionKind.Repeat, [], [], remembered);

        var resolvedNow = resolved.ToHashSet();
        var stillFiring = joined.Count > 0 || openIncidentAlerts.Any(k =>
            known.TryGetValue(k, out var s) && s == AlertState.Firing && !resolvedNow.Contains(k));
        return new IncidentTransition(stillFiring ? TransitionKind.Change : TransitionKind.Close, joined, resolved, remembered);
    }
}
