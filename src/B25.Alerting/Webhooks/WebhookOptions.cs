using System.ComponentModel.DataAnnotations;

namespace B25.Alerting.Webhooks;

internal sealed class WebhookOptions
{
    public const string Section = "Webhook";

    /// <summary>Bearer token Alertmanager must send. Empty: every request is accepted (a warning is logged at start).</summary>
    public string? BearerToken { get; set; }

    /// <summary>Largest accepted body. The default holds a 20,000-alert group with room to spare.</summary>
    [Range(1024, 1L << 31)]
    public long MaxBodyBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>How long a request may wait for its journal write before it is answered 503.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:05:00")]
    public TimeSpan JournalTimeout { get; set; } = TimeSpan.FromSeconds(10);
}
