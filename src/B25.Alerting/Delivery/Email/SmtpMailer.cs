using System.Net.Sockets;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Options;
using MimeKit;
using MailKitSmtpClient = MailKit.Net.Smtp.SmtpClient;

namespace B25.Alerting.Delivery.Email;

internal enum SmtpSendStatus { Sent, Transient, Permanent }

/// <summary>One mail's result, classified. <see cref="ErrorKey"/> is stable per kind of error (for log-once).</summary>
internal sealed record SmtpSendResult(SmtpSendStatus Status, string? Error = null, string? ErrorKey = null, TimeSpan? RetryAfter = null)
{
    public static readonly SmtpSendResult Ok = new(SmtpSendStatus.Sent);

    /// <summary>The relay could not be reached or broke off: counts against the circuit breaker.</summary>
    public bool IsConnectionFailure { get; init; }
}

/// <summary>Sends one mail through the relay.</summary>
internal interface ISmtpMailer
{
    Task<SmtpSendResult> SendAsync(MimeMessage message, CancellationToken cancellationToken);
}

/// <summary>
/// MailKit over one short SMTP session per mail (mail volume is a handful per incident). Retry
/// classification is data, in the spirit of Alertmanager's notify/email: a 4xx reply means later,
/// a 5xx reply means never for this mail, and anything that breaks the connection means later.
/// </summary>
internal sealed class SmtpMailer(IOptions<SmtpOptions> options) : ISmtpMailer
{
    public async Task<SmtpSendResult> SendAsync(MimeMessage message, CancellationToken cancellationToken)
    {
        var smtp = options.Value;
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        budget.CancelAfter(smtp.Timeout);
        using var client = new MailKitSmtpClient { Timeout = (int)smtp.Timeout.TotalMilliseconds };
        try
        {
            await client.ConnectAsync(smtp.Host ?? "", smtp.Port, Socket(smtp.Security), budget.Token);
            if (!string.IsNullOrWhiteSpace(smtp.Username))
                await client.AuthenticateAsync(smtp.Username, smtp.Password ?? "", budget.Token);
            await client.SendAsync(message, budget.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Classify(new TimeoutException($"no answer within {smtp.Timeout}"), smtp);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return Classify(ex, smtp);
        }
        // The relay accepted the mail (250 after DATA); a failure to say goodbye must not resend it.
        try { await client.DisconnectAsync(true, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(2), CancellationToken.None); }
        catch (Exception) { /* accepted already */ }
        return SmtpSendResult.Ok;
    }

    private static SecureSocketOptions Socket(SmtpSecurity security) => security switch
    {
        SmtpSecurity.None => SecureSocketOptions.None,
        SmtpSecurity.SslOnConnect => SecureSocketOptions.SslOnConnect,
        _ => SecureSocketOptions.StartTls,
    };

    /// <summary>Which failures are worth another try.</summary>
    internal static SmtpSendResult Classify(Exception ex, SmtpOptions smtp) => ex switch
    {
        SmtpCommandException { StatusCode: var code } when (int)code is >= 400 and < 500 =>
            new SmtpSendResult(SmtpSendStatus.Transient, $"SMTP {(int)code} {ex.Message}", $"SMTP {(int)code}", smtp.RetryAfter)
            {
                // 421: the server is closing the channel (overloaded, shutting down): that is the relay, not this mail.
                IsConnectionFailure = (int)code == 421,
            },
        SmtpCommandException { StatusCode: var code } =>
            new SmtpSendResult(SmtpSendStatus.Permanent, $"SMTP {(int)code} {ex.Message}", $"SMTP {(int)code}"),
        AuthenticationException =>
            new SmtpSendResult(SmtpSendStatus.Permanent, $"SMTP login refused: {ex.Message}", "login refused"),
        // STARTTLS or AUTH asked for but not offered by the relay: a settings problem, not a passing one.
        NotSupportedException =>
            new SmtpSendResult(SmtpSendStatus.Permanent, $"SMTP relay does not support what Smtp:* asks: {ex.Message}", "not supported"),
        SslHandshakeException =>
            new SmtpSendResult(SmtpSendStatus.Transient, $"TLS handshake with the relay failed: {ex.Message}", "tls") { IsConnectionFailure = true },
        TimeoutException =>
            new SmtpSendResult(SmtpSendStatus.Transient, $"timeout: {ex.Message}", "timeout") { IsConnectionFailure = true },
        SocketException socket =>
            new SmtpSendResult(SmtpSendStatus.Transient, $"connection failed: {socket.SocketErrorCode}", "connection") { IsConnectionFailure = true },
        IOException or SmtpProtocolException or ServiceNotConnectedException =>
            new SmtpSendResult(SmtpSendStatus.Transient, $"connection failed: {ex.Message}", "connection") { IsConnectionFailure = true },
        _ => new SmtpSendResult(SmtpSendStatus.Transient, $"{ex.GetType().Name}: {ex.Message}", ex.GetType().Name),
    };
}
