using System.Collections.Immutable;

namespace B25.Simulator.Faults;

/// <summary>
/// Which faults are switched on, per service. Read on every simulation tick and every scrape,
/// written by the control API; an immutable snapshot keeps readers lock-free.
/// </summary>
internal sealed class FaultBoard
{
    private ImmutableDictionary<string, ImmutableHashSet<Fault>> _active =
        ImmutableDictionary.Create<string, ImmutableHashSet<Fault>>(StringComparer.Ordinal);

    public event Action<string, Fault, bool>? Changed;

    public bool IsActive(string service, Fault fault) =>
        _active.TryGetValue(service, out var faults) && faults.Contains(fault);

    public IReadOnlySet<Fault> ActiveFor(string service) =>
        _active.TryGetValue(service, out var faults) ? faults : ImmutableHashSet<Fault>.Empty;

    public IReadOnlyDictionary<string, ImmutableHashSet<Fault>> Snapshot() => _active;

    /// <returns>true when the switch changed.</returns>
    public bool Set(string service, Fault fault, bool on)
    {
        bool changed;
        ImmutableDictionary<string, ImmutableHashSet<Fault>> before, after;
        do
        {
            before = _active;
            var current = before.TryGetValue(service, out var faults) ? faults : ImmutableHashSet<Fault>.Empty;
            var next = on ? current.Add(fault) : current.Remove(fault);
            changed = !ReferenceEquals(next, current);
            if (!changed)
            {
                return false;
            }

            after = next.IsEmpty ? before.Remove(service) : before.SetItem(service, next);
        }
        while (!ReferenceEquals(Interlocked.CompareExchange(ref _active, after, before), before));

        Changed?.Invoke(service, fault, on);
        return true;
    }
}
