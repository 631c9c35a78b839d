namespace B25.Alerting.Observability;

/// <summary>
/// Whether the code running now counts in the service's metrics. The start's warm-up runs the real delivery path (the
/// dispatcher, a Slack notifier) on a sample that is never stored nor sent: a delivery or a fallback it would count did
/// not happen, so the metric sites on that path ask <see cref="Counts"/> first. An <see cref="AsyncLocal{T}"/>: it holds
/// for the async method that calls <see cref="StopCountingHere"/> and what that method awaits, and ends with it.
/// </summary>
internal static class MetricsScope
{
    private static readonly AsyncLocal<bool> Uncounted = new();

    public static bool Counts => !Uncounted.Value;

    /// <summary>
    /// Nothing the calling async method runs from here on counts. Call it after resolving services: a singleton built
    /// here would carry the mark into the timers and loops it starts.
    /// </summary>
    public static void StopCountingHere() => Uncounted.Value = true;
}
