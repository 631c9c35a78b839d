using System.Text.Json;
using System.Text.Json.Serialization;

namespace B25.Alerting.Webhooks;

/// <summary>Alertmanager webhook payload, version 4: one notification of one alert group.</summary>
internal sealed class AlertmanagerNotification
{
    [JsonPropertyName("version")] public string? Version { get; set; }
    [JsonPropertyName("groupKey")] public string? GroupKey { get; set; }
    [JsonPropertyName("truncatedAlerts")] public int TruncatedAlerts { get; set; }
    [JsonPropertyName("status")] public string? Status { get; set; }
    [JsonPropertyName("receiver")] public string? Receiver { get; set; }
    [JsonPropertyName("groupLabels")] public Dictionary<string, string>? GroupLabels { get; set; }
    [JsonPropertyName("commonLabels")] public Dictionary<string, string>? CommonLabels { get; set; }
    [JsonPropertyName("commonAnnotations")] public Dictionary<string, string>? CommonAnnotations { get; set; }
    [JsonPropertyName("externalURL")] public string? ExternalUrl { get; set; }
    [JsonPropertyName("alerts")] public List<AlertmanagerAlert>? Alerts { get; set; }
}

internal sealed class AlertmanagerAlert
{
    [JsonPropertyName("status")] public string? Status { get; set; }
    [JsonPropertyName("labels")] public Dictionary<string, string>? Labels { get; set; }
    [JsonPropertyName("annotations")] public Dictionary<string, string>? Annotations { get; set; }
    [JsonPropertyName("startsAt")] public DateTimeOffset? StartsAt { get; set; }
    [JsonPropertyName("endsAt")] public DateTimeOffset? EndsAt { get; set; }
    [JsonPropertyName("generatorURL")] public string? GeneratorUrl { get; set; }
    [JsonPropertyName("fingerprint")] public string? Fingerprint { get; set; }

    public bool IsFiring => Status == "firing";
}

[JsonSerializable(typeof(AlertmanagerNotification))]
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSourceGenerationOptions(UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip)]
internal sealed partial class WebhookJsonContext : JsonSerializerContext;

internal static class NotificationParser
{
    /// <summary>Parses and validates a webhook body. Returns the notification, or what is wrong with it.</summary>
    public static (AlertmanagerNotification? Notification, string? Error) Parse(ReadOnlySpan<byte> body)
    {
        AlertmanagerNotification? notification;
        try
        {
            notification = JsonSerializer.Deserialize(body, WebhookJsonContext.Default.AlertmanagerNotification);
        }
        catch (JsonException ex)
        {
            var where = ex.Path is null ? "" : $" at {ex.Path}";
            var line = ex.LineNumber is null ? "" : $" (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine})";
            return (null, $"Malformed JSON{where}{line}.");
        }

        if (notification is null)
            return (null, "The body is JSON null; expected an Alertmanager webhook object.");
        return (notification, Validate(notification));
    }

    private static string? Validate(AlertmanagerNotification n)
    {
        if (n.Version != "4")
            return n.Version is null
                ? "Missing 'version'; only Alertmanager webhook version \"4\" is accepted."
                : $"Unsupported 'version' \"{n.Version}\"; only Alertmanager webhook version \"4\" is accepted.";
        if (string.IsNullOrEmpty(n.GroupKey)) return "Missing 'groupKey'.";
        if (string.IsNullOrEmpty(n.Receiver)) return "Missing 'receiver'.";
        if (n.Alerts is null) return "Missing 'alerts'.";
        for (var i = 0; i < n.Alerts.Count; i++)
        {
            var alert = n.Alerts[i];
            if (alert is null) return $"alerts[{i}] is null.";
            if (string.IsNullOrEmpty(alert.Fingerprint)) return $"alerts[{i}] has no 'fingerprint'.";
            if (alert.StartsAt is null) return $"alerts[{i}] ({alert.Fingerprint}) has no 'startsAt'.";
            if (alert.Status is not ("firing" or "resolved"))
                return alert.Status is null
                    ? $"alerts[{i}] ({alert.Fingerprint}) has no 'status'; expected \"firing\" or \"resolved\"."
                    : $"alerts[{i}] ({alert.Fingerprint}) has status \"{alert.Status}\"; expected \"firing\" or \"resolved\".";
        }
        return null;
    }
}
