using System.Security.Cryptography;
using System.Text;
using B25.Alerting.Hosting;
using B25.Alerting.Observability;
using B25.Alerting.Pipeline;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Webhooks;

internal static partial class AlertmanagerWebhookEndpoints
{
    public static IEndpointRouteBuilder MapAlertmanagerWebhook(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/webhooks/alertmanager", ReceiveAsync)
            .WithName("AlertmanagerWebhook")
            .DisableAntiforgery();
        return routes;
    }

    public sealed record Accepted(string Status, string NotificationId);

    /// <summary>
    /// Answers 2xx only once the notification is journaled; 503 when it cannot be (Alertmanager
    /// retries 5xx, and never 4xx or 429, so bad input is 4xx and nothing else is).
    /// </summary>
    internal static async Task<Results<Ok<Accepted>, ProblemHttpResult>> ReceiveAsync(
        HttpContext http,
        IOptions<WebhookOptions> options,
        NotificationJournal journal,
        NotificationPublisher publisher,
        WatchdogMonitor watchdog,
        IOptions<WatchdogOptions> watchdogOptions,
        TimeProvider time,
        ILoggerFactory loggers,
        WarmUpRequests warmUps)
    {
        var logger = loggers.CreateLogger("B25.Alerting.Webhooks");
        var settings = options.Value;
        var started = time.GetTimestamp();
        // The start's own call (Hosting/StartupWarmUp): the same path, journaled where the warm-up rolls it back, never published or counted.
        var warmUp = warmUps.Marks(http.Request) ? warmUps.Journal : null;

        if (!Authorized(http.Request, settings.BearerToken))
        {
            http.Response.Headers.WWWAuthenticate = "Bearer";
            return Reject("unauthorized", StatusCodes.Status401Unauthorized, "Unauthorized",
                "Missing or wrong bearer token: send 'Authorization: Bearer <Webhook:BearerToken>'.");
        }

        if (!IsJson(http.Request.ContentType))
            return Reject("unsupported_media_type", StatusCodes.Status415UnsupportedMediaType, "Unsupported media type",
                $"Content-Type '{http.Request.ContentType}' is not JSON; Alertmanager sends application/json.");

        if (http.Request.ContentLength > settings.MaxBodyBytes)
            return TooLarge(settings.MaxBodyBytes);
        var sizeFeature = http.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (sizeFeature is { IsReadOnly: false }) sizeFeature.MaxRequestBodySize = settings.MaxBodyBytes + 1;

        byte[]? body;
        try
        {
            body = await ReadLimitedAsync(http.Request.Body, http.Request.ContentLength, settings.MaxBodyBytes, http.RequestAborted);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            body = null;
        }
        catch (Exception ex) when (ex is EndOfStreamException or BadHttpRequestException)
        {
            return Reject("invalid", StatusCodes.Status400BadRequest, "Invalid Alertmanager notification",
                "The body ended before its Content-Length.");
        }
        if (body is null) return TooLarge(settings.MaxBodyBytes);

        var (notification, error) = NotificationParser.Parse(body);
        if (error is not null)
            return Reject("invalid", StatusCodes.Status400BadRequest, "Invalid Alertmanager notification", error);

        var groupId = NotificationIdentity.GroupId(notification!.Receiver, notification.GroupKey);
        var id = NotificationIdentity.NotificationId(notification);

        if (notification.Receiver == watchdogOptions.Value.Receiver)
        {
            // The dead-man's switch: its arrival is the message; nothing to journal or page.
            try
            {
                await watchdog.SeenAsync(http.RequestAborted);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !http.RequestAborted.IsCancellationRequested)
            {
                LogJournalUnavailable(logger, ex);
                return Reject("journal_unavailable", StatusCodes.Status503ServiceUnavailable, "Journal unavailable",
                    "The Watchdog's arrival could not be recorded. Retry later.");
            }
            return TypedResults.Ok(new Accepted("watchdog", id));
        }
        var entry = new JournalEntry(id, groupId, notification.Receiver, notification.GroupKey, time.GetUtcNow().ToUnixTimeMilliseconds(), body);

        JournalResult result;
        try
        {
            result = await (warmUp ?? journal).AppendAsync(entry, settings.JournalTimeout, http.RequestAborted);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !http.RequestAborted.IsCancellationRequested)
        {
            LogJournalUnavailable(logger, ex);
            return Reject("journal_unavailable", StatusCodes.Status503ServiceUnavailable, "Journal unavailable",
                "The notification could not be stored durably; nothing was accepted. Retry later.");
        }

        if (warmUp is not null)
            return TypedResults.Ok(new Accepted("warm-up", id));
        if (result == JournalResult.Duplicate)
        {
            AlertingMetrics.DuplicatesDropped.Inc();
        }
        else
        {
            AlertingMetrics.NotificationsReceived.Inc();
            publisher.Enqueue(new NotificationAccepted(id, groupId, NotificationIdentity.PartitionKey(groupId)));
        }
        AlertingMetrics.AcceptLatency.Observe(time.GetElapsedTime(started).TotalSeconds);
        return TypedResults.Ok(new Accepted(result == JournalResult.Duplicate ? "duplicate" : "accepted", id));
    }

    private static ProblemHttpResult TooLarge(long max) =>
        Reject("too_large", StatusCodes.Status413PayloadTooLarge, "Notification too large",
            $"The body is larger than Webhook:MaxBodyBytes ({max} bytes).");

    private static ProblemHttpResult Reject(string reason, int status, string title, string detail)
    {
        AlertingMetrics.NotificationsRejected.WithLabels(reason).Inc();
        return TypedResults.Problem(detail: detail, statusCode: status, title: title);
    }

    private static bool Authorized(HttpRequest request, string? expected)
    {
        if (string.IsNullOrEmpty(expected)) return true;
        var header = request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return false;
        var given = Encoding.UTF8.GetBytes(header[scheme.Length..].Trim());
        return CryptographicOperations.FixedTimeEquals(given, Encoding.UTF8.GetBytes(expected));
    }

    private static bool IsJson(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType)) return false;
        var mediaType = contentType.Split(';')[0].Trim();
        return mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
               || mediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Reads the body, or returns null as soon as it passes the limit.</summary>
    private static async Task<byte[]?> ReadLimitedAsync(Stream body, long? length, long max, CancellationToken cancellationToken)
    {
        if (length is { } exact)
        {
            // The usual case (Alertmanager sends Content-Length): one buffer of the right size, no copies.
            var bytes = new byte[exact];
            await body.ReadExactlyAsync(bytes, cancellationToken);
            var extra = new byte[1];
            return await body.ReadAsync(extra, cancellationToken) == 0 ? bytes : null;
        }
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > max) return null;
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    [LoggerMessage(EventId = 1001, Level = LogLevel.Error, Message = "Journal unavailable: notification answered 503")]
    private static partial void LogJournalUnavailable(ILogger logger, Exception ex);
}
