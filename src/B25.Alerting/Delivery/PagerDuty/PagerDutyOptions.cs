using System.ComponentModel.DataAnnotations;

namespace B25.Alerting.Delivery.PagerDuty;

/// <summary>
/// The PagerDuty section. Routing keys are secrets: routes name them (<c>default</c> or a name under
/// <see cref="RoutingKeys"/>), and only that name is ever stored, logged or shown.
/// </summary>
internal sealed class PagerDutyOptions : IValidatableObject
{
    public const string Section = "PagerDuty";

    /// <summary>The routing key routes call <c>default</c> (the shipped critical route pages it). Empty: see <see cref="RoutingKeys"/>.</summary>
    public string? RoutingKey { get; set; }

    /// <summary>More routing keys by name, for routes that say <c>PagerDuty: { RoutingKey: "&lt;name&gt;" }</c>.</summary>
    public Dictionary<string, string?> RoutingKeys { get; set; } = [];

    [Required, Url]
    public string EventsUrl { get; set; } = "https://events.pagerduty.com/v2/enqueue";

    /// <summary>Sustained events per minute per routing key (PagerDuty allows about 120).</summary>
    [Range(1, 6000)]
    public int EventsPerMinute { get; set; } = 120;

    /// <summary>Events a quiet routing key may send at once before the rate applies.</summary>
    [Range(1, 1000)]
    public int Burst { get; set; } = 20;

    /// <summary>Timeout of one Events API call.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:05:00")]
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a delivery waits in the outbox after PagerDuty failed for now (429, 5xx, timeout), unless it sent Retry-After.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Alerts loaded for custom_details; the event is capped at 512 KB whatever this says.</summary>
    [Range(1, 10000)]
    public int MaxAlerts { get; set; } = 200;

    /// <summary>Optional Grafana link added to every trigger (e.g. the trading overview dashboard).</summary>
    public string? GrafanaUrl { get; set; }

    /// <summary>Optional client_url ("view in B25.Alerting"); empty: the notification's Alertmanager externalURL.</summary>
    public string? ClientUrl { get; set; }

    /// <summary>The configured key names (<c>default</c> for <see cref="RoutingKey"/>), case-insensitive.</summary>
    /// <summary>
    /// The signing secret of the PagerDuty webhook subscription (v3) that sends to <c>POST /webhooks/pagerduty</c>.
    /// Empty: that endpoint is off (404).
    /// </summary>
    public string? WebhookSecret { get; set; }

    public Dictionary<string, string> ConfiguredKeys()
    {
        var keys = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, key) in RoutingKeys)
            if (!string.IsNullOrWhiteSpace(key)) keys[name] = key.Trim();
        if (!string.IsNullOrWhiteSpace(RoutingKey)) keys["default"] = RoutingKey.Trim();
        return keys;
    }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var (name, value) in new[] { (nameof(GrafanaUrl), GrafanaUrl), (nameof(ClientUrl), ClientUrl) })
            if (!string.IsNullOrWhiteSpace(value) && !IsHttpUrl(value))
                yield return new ValidationResult($"PagerDuty:{name} must be an absolute http(s) URL or empty.", [name]);
        foreach (var (name, key) in ConfiguredKeys())
            if (key.Any(char.IsWhiteSpace))
                // Never echo the key: it is a secret.
                yield return new ValidationResult($"PagerDuty routing key '{name}' contains whitespace.", [nameof(RoutingKeys)]);
    }

    internal static bool IsHttpUrl(string? value) => Hrefs.WebUri(value) is not null;
}
