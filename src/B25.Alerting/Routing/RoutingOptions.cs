namespace B25.Alerting.Routing;

/// <summary>
/// The routing table. Routes are tried in order for every alert of an incident; the first that
/// matches wins unless it says <see cref="RouteOptions.Continue"/>.
/// </summary>
internal sealed class RoutingOptions
{
    public const string Section = "Routing";

    public List<RouteOptions> Routes { get; set; } = [];
}

internal sealed class RouteOptions
{
    /// <summary>A name for logs, metrics and the incidents API.</summary>
    public string? Name { get; set; }

    /// <summary>When set, the notification's receiver must match this Alertmanager-style value
    /// (exact, or a matcher such as <c>=~"b25-.*"</c>).</summary>
    public string? Receiver { get; set; }

    /// <summary>Label matchers, all of which must match; none matches everything.</summary>
    public List<string> Matchers { get; set; } = [];

    /// <summary>Keep trying the next routes after this one matched.</summary>
    public bool Continue { get; set; }

    public SlackRouteOptions? Slack { get; set; }

    public PagerDutyRouteOptions? PagerDuty { get; set; }

    public EmailRouteOptions? Email { get; set; }

    public RiskManagerRouteOptions? RiskManager { get; set; }

    /// <summary>Reminders in the incident's Slack thread while nobody acknowledges it; none when unset.</summary>
    public EscalationOptions? Escalation { get; set; }
}

/// <summary>
/// An unacknowledged incident is escalated <see cref="After"/> it opened: a thread reply mentioning <see cref="Mention"/>,
/// repeated every <see cref="RepeatEvery"/> until it is acknowledged or resolved, at most <see cref="Max"/> times.
/// </summary>
internal sealed class EscalationOptions
{
    public TimeSpan After { get; set; } = TimeSpan.FromMinutes(5);

    public TimeSpan RepeatEvery { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Slack mention of the on-call group: <c>&lt;!subteam^S0123&gt;</c>, <c>&lt;@U0123&gt;</c> or <c>&lt;!here&gt;</c>.</summary>
    public string Mention { get; set; } = "";

    public int Max { get; set; } = 3;
}

internal sealed class PagerDutyRouteOptions
{
    /// <summary>
    /// Name of the routing key: <c>default</c> is <c>PagerDuty:RoutingKey</c>, any other name is
    /// <c>PagerDuty:RoutingKeys:&lt;name&gt;</c>. The key itself is a secret and never stored or shown.
    /// </summary>
    public string RoutingKey { get; set; } = "default";
}

internal sealed class EmailRouteOptions
{
    /// <summary>Mailboxes; empty means the default recipients <c>Smtp:To</c>.</summary>
    public List<string> To { get; set; } = [];
}

internal sealed class RiskManagerRouteOptions
{
    /// <summary>Ask the risk manager for an emergency stop when an alert of this route fires.</summary>
    public bool EmergencyStop { get; set; }
}

internal sealed class SlackRouteOptions
{
    /// <summary>Channel name (<c>#trading-alerts</c>) or id (<c>C0123ABC</c>).</summary>
    public string? Channel { get; set; }
}
