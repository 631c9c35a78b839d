using System.Collections.Concurrent;
using System.Text.Json;
using B25.Alerting.Incidents;
using B25.Alerting.Routing;
using B25.Alerting.Webhooks;
using Microsoft.Extensions.Options;
using MimeKit;
using Polly;
using Polly.CircuitBreaker;

namespace B25.Alerting.Delivery.Email;

/// <summary>
/// Email channel: one mail when an incident opens at a mailbox and one when it closes, threaded to the
/// first (In-Reply-To/References). Joins, partial resolves and repeats send nothing: mail is the record,
/// Slack and PagerDuty carry the live state. When the relay was unreachable for the whole incident,
/// the opened and closed deliveries go out as one closed mail that tells the whole story.
/// </summary>
internal sealed partial class EmailNotifier : IChannelNotifier
{
    public const string DefaultTarget = "default";

    private static readonly TimeSpan BreakDuration = TimeSpan.FromSeconds(30);

    private readonly ISmtpMailer _mailer;
    private readonly EmailRenderer _renderer;
    private readonly SmtpOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<EmailNotifier> _logger;
    private readonly ResiliencePipeline<SmtpSendResult> _pipeline;
    private readonly ConcurrentDictionary<(string Target, string Error), bool> _loggedPermanent = new();

    public EmailNotifier(ISmtpMailer mailer, EmailRenderer renderer, IOptions<SmtpOptions> options, TimeProvider time, ILogger<EmailNotifier> logger)
    {
        _mailer = mailer;
        _renderer = renderer;
        _options = options.Value;
        _time = time;
        _logger = logger;
        // One breaker for the channel: every mailbox goes through the same relay, so when it is down
        // mails wait in the outbox instead of each trying a dead server.
        _pipeline = new ResiliencePipelineBuilder<SmtpSendResult> { TimeProvider = time }
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions<SmtpSendResult>
            {
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Result?.IsConnectionFailure == true),
                FailureRatio = 0.5,
                MinimumThroughput = 4,
                SamplingDuration = TimeSpan.FromSeconds(60),
                BreakDuration = BreakDuration,
            })
            .Build();
    }

    public string Channel => "email";

    public bool ShowsContext => true;

    public string? DisabledReason => _options.DisabledReason;

    /// <summary>
    /// The target <c>default</c> means Smtp:To; with Smtp:To empty a route naming it would mail nobody,
    /// so the start fails and says which setting is missing (checked only when the channel is on).
    /// </summary>
    public string? CheckTarget(string target)
    {
        if (target == DefaultTarget)
            return _options.To.Count == 0
                ? "Email:To is empty, which means the default recipients Smtp:To, and Smtp:To is empty: set Smtp:To or list mailboxes in the route's Email:To."
                : null;
        return MailboxAddress.TryParse(target, out _) ? null : $"Email:To has '{target}', which is not a mail address.";
    }

    public IEnumerable<PlannedDelivery> Plan(IncidentChange change, DeliveryTarget target, bool isNewTarget, IReadOnlyList<AlertmanagerAlert> joinedHere)
    {
        var payload = JsonSerializer.Serialize(change.Summary, DeliveryJsonContext.Default.ChangeSummary);
        if (isNewTarget)
            yield return new PlannedDelivery(EmailKinds.Opened, payload);
        else if (change.Kind == TransitionKind.Close)
            yield return new PlannedDelivery(EmailKinds.Closed, payload);
    }

    public async Task<DeliveryBatchResult> DeliverAsync(IncidentView incident, string target, IReadOnlyList<PendingDelivery> pending,
        DeliveredMessage? message, CancellationToken cancellationToken)
    {
        var outcomes = new List<DeliveryOutcome>();
        var opened = pending.Where(d => d.Kind == EmailKinds.Opened).ToList();
        var closed = pending.Where(d => d.Kind == EmailKinds.Closed).ToList();
        outcomes.AddRange(pending.Where(d => d.Kind is not (EmailKinds.Opened or EmailKinds.Closed))
            .Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Failed, $"the email channel has no delivery kind '{d.Kind}'")));
        if (opened.Count == 0 && closed.Count == 0) return new DeliveryBatchResult(outcomes, null);

        // Opened and closed both pending: the relay was away for the whole incident. One closed mail
        // says both, rather than a FIRING mail for something that is already over.
        var kind = closed.Count > 0 ? EmailKinds.Closed : EmailKinds.Opened;
        var sending = kind == EmailKinds.Closed ? closed : opened;
        var merged = kind == EmailKinds.Closed ? opened : [];
        var openedMailSent = message is not null;

        var recipients = Recipients(target);
        if (recipients.Count == 0)
        {
            // Smtp:To was emptied after the deliveries were queued (CheckTarget stops that at start).
            outcomes.AddRange(pending.Where(d => d.Kind is EmailKinds.Opened or EmailKinds.Closed)
                .Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Failed, "no recipients: Smtp:To is empty")));
            return new DeliveryBatchResult(outcomes, null);
        }

        var content = _renderer.Render(incident, kind, openedUnsent: kind == EmailKinds.Closed && !openedMailSent);
        var mail = Build(incident, kind, recipients, content, openedMailSent ? message!.MessageId : null);
        var result = await SendAsync(mail, cancellationToken);

        if (result.Status == SmtpSendStatus.Sent)
        {
            outcomes.Add(new DeliveryOutcome(sending[0].Id, DeliveryOutcomeKind.Sent));
            outcomes.AddRange(sending.Skip(1).Concat(merged).Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Merged)));
            var created = kind == EmailKinds.Opened ? new DeliveredMessage(target, mail.MessageId ?? "") : null;
            return new DeliveryBatchResult(outcomes, created);
        }

        var failed = sending.Concat(merged).ToList();
        if (result.Status == SmtpSendStatus.Permanent)
        {
            if (_loggedPermanent.TryAdd((target, result.ErrorKey ?? result.Error ?? ""), true))
                LogPermanent(target, result.Error ?? "unknown");
            outcomes.AddRange(failed.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Failed, result.Error)));
        }
        else
        {
            LogTransient(target, result.Error ?? "unknown");
            outcomes.AddRange(failed.Select(d => new DeliveryOutcome(d.Id, DeliveryOutcomeKind.Retry, result.Error, result.RetryAfter)));
        }
        return new DeliveryBatchResult(outcomes, null);
    }

    /// <summary>
    /// Message-ID is a function of the incident and the kind, so a mail sent again after a lost reply is
    /// recognisably the same mail, and the closed mail can name the opened one without a lookup.
    /// </summary>
    internal static string MessageIdFor(string incidentId, string kind, string from)
    {
        var domain = MailboxAddress.TryParse(from, out var sender) && sender.Domain is { Length: > 0 } d ? d : "b25-alerting.local";
        return $"{incidentId}.{kind}@{domain}";
    }

    private List<MailboxAddress> Recipients(string target)
    {
        var addresses = target == DefaultTarget ? _options.To : [target];
        return addresses.Select(a => MailboxAddress.TryParse(a, out var m) ? m : null).OfType<MailboxAddress>().ToList();
    }

    private MimeMessage Build(IncidentView incident, string kind, List<MailboxAddress> recipients, EmailContent content, string? inReplyTo)
    {
        var mail = new MimeMessage();
        mail.From.Add(MailboxAddress.Parse(_options.From!));
        mail.To.AddRange(recipients);
        mail.Subject = content.Subject;
        mail.Date = _time.GetUtcNow();
        mail.MessageId = MessageIdFor(incident.Id, kind, _options.From!);
        if (inReplyTo is not null)
        {
            mail.InReplyTo = inReplyTo;
            mail.References.Add(inReplyTo);
        }
        // RFC 3834: no vacation auto-replies to a robot.
        mail.Headers.Add("Auto-Submitted", "auto-generated");
        mail.Headers.Add("X-B25-Incident", incident.Id);
        var body = new BodyBuilder { TextBody = content.Text, HtmlBody = content.Html };
        if (content.Chart is { } chart)
        {
            // multipart/related: the HTML part shows it inline by its Content-ID.
            var image = body.LinkedResources.Add("chart.png", chart, new MimeKit.ContentType("image", "png"));
            image.ContentId = EmailRenderer.ChartContentId;
        }
        mail.Body = body.ToMessageBody();
        return mail;
    }

    private async Task<SmtpSendResult> SendAsync(MimeMessage mail, CancellationToken cancellationToken)
    {
        try
        {
            return await _pipeline.ExecuteAsync(async ct => await _mailer.SendAsync(mail, ct), cancellationToken);
        }
        catch (BrokenCircuitException ex)
        {
            return new SmtpSendResult(SmtpSendStatus.Transient, "circuit open: the SMTP relay failed repeatedly", "circuit open", ex.RetryAfter ?? BreakDuration);
        }
    }

    [LoggerMessage(EventId = 3401, Level = LogLevel.Error, Message = "The SMTP relay refused a mail to {Target} for good: {Error}. Not retried; later failures with the same error are counted, not logged")]
    private partial void LogPermanent(string target, string error);

    [LoggerMessage(EventId = 3402, Level = LogLevel.Warning, Message = "Mail to {Target} failed for now ({Error}); it stays queued and is retried")]
    private partial void LogTransient(string target, string error);
}
