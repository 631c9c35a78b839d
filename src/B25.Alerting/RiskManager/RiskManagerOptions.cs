using System.ComponentModel.DataAnnotations;

namespace B25.Alerting.RiskManager;

internal sealed class RiskManagerOptions
{
    public const string Section = "RiskManager";

    /// <summary>Record and show (on the incident's Slack message) what would be requested; publish nothing.</summary>
    public bool DryRun { get; set; }

    /// <summary>
    /// Emergency stops requested for alerts that fired within one <see cref="Window"/>, beyond which the service stops asking
    /// and pages humans. Counted by the alerts' firing time (startsAt), not by when the requests are sent, so a backlog
    /// released after an outage is not taken for a burst.
    /// </summary>
    [Range(1, 1000)]
    public int MaxStopsPerWindow { get; set; } = 3;

    /// <summary>The cap's sliding window, over the alerts' firing times.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00")]
    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// An emergency stop the risk manager has not answered (acknowledged or rejected) this long after it was requested
    /// pages the incident's Slack channel (@here): the stop may not have happened.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan AnswerTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Publish IncidentOpened / IncidentResolved for every incident.</summary>
    public bool PublishIncidentEvents { get; set; } = true;
}
