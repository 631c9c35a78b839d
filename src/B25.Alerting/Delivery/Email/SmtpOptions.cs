using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using MimeKit;

namespace B25.Alerting.Delivery.Email;

internal enum SmtpSecurity
{
    /// <summary>Plain SMTP, no TLS (a relay on the same host or network only).</summary>
    None,
    /// <summary>Connect in plain text, then STARTTLS; refuses to go on if the server does not offer it.</summary>
    StartTls,
    /// <summary>TLS from the first byte (SMTPS, usually port 465).</summary>
    SslOnConnect,
}

/// <summary>The SMTP relay the email channel sends through, and the default recipients.</summary>
internal sealed class SmtpOptions
{
    public const string Section = "Smtp";

    /// <summary>Relay host name. Empty: the email channel is off.</summary>
    public string? Host { get; set; }

    [Range(1, 65535)]
    public int Port { get; set; } = 587;

    public SmtpSecurity Security { get; set; } = SmtpSecurity.StartTls;

    /// <summary>Login; empty: no AUTH.</summary>
    public string? Username { get; set; }

    /// <summary>Secret: never logged or shown.</summary>
    public string? Password { get; set; }

    /// <summary>Sender, <c>alerts@example.com</c> or <c>B25 Alerting &lt;alerts@example.com&gt;</c>. Empty: the channel is off.</summary>
    public string? From { get; set; }

    /// <summary>Default recipients: the route target <c>default</c> (a route with <c>Email: { To: [] }</c>).</summary>
    public List<string> To { get; set; } = [];

    /// <summary>Time budget of one mail: connect, TLS, login and send together.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:05:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a mail waits after a 4xx reply (the server said "later": greylisting, busy, quota).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan RetryAfter { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Alerts listed in one mail; the rest are counted.</summary>
    [Range(1, 40)]
    public int MaxAlertsShown { get; set; } = 20;

    /// <summary>Why the channel is off, or null when it is on.</summary>
    public string? DisabledReason =>
        string.IsNullOrWhiteSpace(Host) ? "Smtp:Host is empty"
        : string.IsNullOrWhiteSpace(From) ? "Smtp:From is empty"
        : null;
}

/// <summary>Addresses are checked at start: a typo in Smtp:From or Smtp:To fails the start, not the first page.</summary>
internal sealed class SmtpOptionsValidator : IValidateOptions<SmtpOptions>
{
    public ValidateOptionsResult Validate(string? name, SmtpOptions options)
    {
        var errors = new List<string>();
        if (!string.IsNullOrWhiteSpace(options.From) && !IsMailbox(options.From))
            errors.Add($"Smtp:From={options.From}: expected a mail address, alerts@example.com or Name <alerts@example.com>");
        for (var i = 0; i < options.To.Count; i++)
            if (!IsMailbox(options.To[i]))
                errors.Add($"Smtp:To:{i}={options.To[i]}: expected a mail address, oncall@example.com");
        if (!string.IsNullOrEmpty(options.Password) && string.IsNullOrWhiteSpace(options.Username))
            errors.Add("Smtp:Password is set but Smtp:Username is empty.");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>One mailbox with a local part and a domain: MimeKit alone takes <c>notanaddress</c> as a local address.</summary>
    internal static bool IsMailbox(string text) =>
        MailboxAddress.TryParse(text, out var mailbox)
        && mailbox.Address.IndexOf('@') is > 0 and var at
        && at < mailbox.Address.Length - 1
        && !mailbox.Domain.StartsWith('.') && !mailbox.Domain.EndsWith('.');
}
