using B25.Alerting.Contracts;
using B25.Alerting.Delivery;
using B25.Alerting.Delivery.Slack;
using B25.Alerting.Storage;
using MassTransit;

namespace B25.Alerting.RiskManager;

/// <summary>
/// Records the risk manager's answer to an emergency stop and shows it in the incident's Slack message (an edit). A
/// rejection also pages the incident's thread (@here): the stop did not happen and people have to act.
/// </summary>
internal sealed partial class EmergencyStopAnswerConsumer(
    IEmergencyStopStore stops,
    DeliverySignal signal,
    TimeProvider time,
    ILogger<EmergencyStopAnswerConsumer> logger) : IConsumer<EmergencyStopAcknowledged>, IConsumer<EmergencyStopRejected>
{
    public Task Consume(ConsumeContext<EmergencyStopAcknowledged> context) =>
        RecordAsync(context.Message.CommandId, "acknowledged", context.Message.AcknowledgedBy, context.Message.Detail,
            context.Message.AcknowledgedAt, null, context.CancellationToken);

    public Task Consume(ConsumeContext<EmergencyStopRejected> context) =>
        RecordAsync(context.Message.CommandId, "rejected", context.Message.RejectedBy, context.Message.Reason,
            context.Message.RejectedAt, "<!here> :x: Risk manager *rejected* emergency stop", context.CancellationToken);

    /// <param name="headline">The thread note's start, for an answer that needs people now (a rejection: the stop did not
    /// happen); null for a routine answer, which only the edited incident message shows.</param>
    private async Task RecordAsync(Guid commandId, string status, string by, string? detail, DateTimeOffset at, string? headline,
        CancellationToken cancellationToken)
    {
        var id = commandId.ToString();
        var text = headline is null
            ? null
            : $"{headline} `{id}` ({SlackText.Escape(by)}){(string.IsNullOrWhiteSpace(detail) ? "" : ": " + SlackText.Escape(detail))}";
        var (incidentId, first) = await stops.RecordAnswerAsync(id, status, by, detail, at.ToUnixTimeMilliseconds(), _ => text,
            time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken);
        if (incidentId is null)
        {
            LogUnknown(id, status);
            return;
        }
        // The first answer counts; a repeated or later answer is logged, not shown again.
        if (!first)
        {
            LogAlreadyAnswered(id, status);
            return;
        }
        LogAnswered(id, status, by);
        signal.Notify();
    }

    [LoggerMessage(EventId = 5101, Level = LogLevel.Warning, Message = "Risk manager {Status} emergency stop {CommandId} ({By})")]
    private partial void LogAnswered(string commandId, string status, string by);

    [LoggerMessage(EventId = 5102, Level = LogLevel.Warning, Message = "Answer {Status} for unknown emergency stop {CommandId}: ignored")]
    private partial void LogUnknown(string commandId, string status);

    [LoggerMessage(EventId = 5103, Level = LogLevel.Information, Message = "Emergency stop {CommandId} was already answered; later answer {Status} only logged")]
    private partial void LogAlreadyAnswered(string commandId, string status);
}
