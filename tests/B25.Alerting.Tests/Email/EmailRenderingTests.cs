using System.Net.Sockets;
using B25.Alerting.Delivery.Email;
using MailKit.Net.Smtp;

namespace B25.Alerting.Tests.Email;

/// <summary>The pieces of a mail that do not need a server: subject line, Message-ID, retry classification.</summary>
public sealed class EmailRenderingTests
{
    private static readonly SmtpOptions Smtp = new() { RetryAfter = TimeSpan.FromSeconds(42) };

    [Fact]
    public void Subject_is_one_line_whatever_the_alert_data_holds()
    {
        Assert.Equal("[FIRING:1] Bad Bcc: x@evil.test", EmailRenderer.Header("[FIRING:1] Bad\r\nBcc: x@evil.test\t"));
        Assert.Equal(EmailRenderer.MaxSubjectLength, EmailRenderer.Header(new string('x', 500)).Length);
    }

    [Fact]
    public void Message_id_is_a_function_of_incident_and_kind()
    {
        Assert.Equal("abc.opened@b25.test", EmailNotifier.MessageIdFor("abc", "opened", "B25 <alerts@b25.test>"));
        Assert.Equal(EmailNotifier.MessageIdFor("abc", "closed", "alerts@b25.test"), EmailNotifier.MessageIdFor("abc", "closed", "alerts@b25.test"));
    }

    [Fact]
    public void Smtp_replies_and_connection_failures_are_classified()
    {
        var busy = SmtpMailer.Classify(new SmtpCommandException(SmtpErrorCode.MessageNotAccepted, SmtpStatusCode.MailboxBusy, "busy"), Smtp);
        Assert.Equal((SmtpSendStatus.Transient, TimeSpan.FromSeconds(42)), (busy.Status, busy.RetryAfter));
        Assert.False(busy.IsConnectionFailure);

        var unknown = SmtpMailer.Classify(new SmtpCommandException(SmtpErrorCode.RecipientNotAccepted, SmtpStatusCode.MailboxUnavailable, "no such user"), Smtp);
        Assert.Equal(SmtpSendStatus.Permanent, unknown.Status);
        Assert.StartsWith("SMTP 550", unknown.Error);

        var closing = SmtpMailer.Classify(new SmtpCommandException(SmtpErrorCode.UnexpectedStatusCode, SmtpStatusCode.ServiceNotAvailable, "bye"), Smtp);
        Assert.True(closing is { Status: SmtpSendStatus.Transient, IsConnectionFailure: true });

        foreach (var ex in new Exception[] { new SocketException((int)SocketError.ConnectionRefused), new TimeoutException(), new IOException("reset") })
            Assert.True(SmtpMailer.Classify(ex, Smtp) is { Status: SmtpSendStatus.Transient, IsConnectionFailure: true }, ex.GetType().Name);

        Assert.Equal(SmtpSendStatus.Permanent, SmtpMailer.Classify(new MailKit.Security.AuthenticationException("535"), Smtp).Status);
    }
}
