using System.ComponentModel.DataAnnotations;

namespace B25.Alerting.Delivery.Slack;

internal sealed class SlackOptions
{
    public const string Section = "Slack";

    /// <summary>Bot token (xoxb-...). Empty: deliveries are written to the log instead of Slack.</summary>
    public string? BotToken { get; set; }

    [Required, Url]
    public string ApiBaseUrl { get; set; } = "https://slack.com/api/";

    /// <summary>Sustained messages per second per channel (Slack allows about one).</summary>
    [Range(0.01, 100)]
    public double MessagesPerSecondPerChannel { get; set; } = 1;

    /// <summary>Messages a quiet channel may send at once before the rate applies.</summary>
    [Range(1, 100)]
    public int BurstPerChannel { get; set; } = 3;

    /// <summary>Timeout of one Web API call.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:05:00")]
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Alerts listed in one message; the rest are summarised (Block Kit allows 50 blocks).</summary>
    [Range(1, 40)]
    public int MaxAlertsShown { get; set; } = 10;

    public bool Enabled => !string.IsNullOrWhiteSpace(BotToken);

    /// <summary>
    /// The Slack app's signing secret (Basic Information, App Credentials). Set: <c>POST /slack/interactions</c> takes
    /// signed button clicks and incident messages carry buttons. Empty: the endpoint is off (404) and no buttons are shown.
    /// </summary>
    public string? SigningSecret { get; set; }

    /// <summary>Slack user ids (U0123ABC) who may act on incidents; empty: everyone in the workspace who sees the message.</summary>
    public List<string> AllowedUsers { get; set; } = [];

    /// <summary>How far a request's X-Slack-Request-Timestamp may be from this machine's clock (Slack's advice: 5 minutes).</summary>
    [Range(typeof(TimeSpan), "00:00:10", "00:15:00")]
    public TimeSpan MaxRequestAge { get; set; } = TimeSpan.FromMinutes(5);

    public bool Interactive => !string.IsNullOrWhiteSpace(SigningSecret);
}
