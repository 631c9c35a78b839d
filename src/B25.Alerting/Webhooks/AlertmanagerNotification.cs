using System.Text.Json;
using System.Text.Json.Serialization;

namespace B25.Alerting.Webhooks;

/// <summary>Alertmanager webhook payload, version 4: one notification of one alert group.</summary>
internal sealed class AlertmanagerNotification
{
    [JsonPropertyName("version")] public string? Version { get; set; }
    [JsonPropertyName("groupKey")] public string? GroupKey { get; set; }
    [JsonPropertyName("truncatedAlerts")] public int? TruncatedAlerts { get; set; }
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

/// <summary>What the intake needs of a valid notification: its group and the identity of each alert.</summary>
internal sealed record NotificationEnvelope(string Receiver, string GroupKey, IReadOnlyList<(string Fingerprint, DateTimeOffset StartsAt, string Status)> Alerts);

/// <summary>
/// Validates a webhook body against the version 4 payload without building it as objects (a
/// 20,000-alert body would cost a hundred megabytes as dictionaries): every field the incident
/// processor binds later is checked here for its JSON type, so what is accepted always binds.
/// </summary>
internal static class NotificationParser
{
    /// <summary>Parses and validates a webhook body. Returns its envelope, or what is wrong with it.</summary>
    public static (NotificationEnvelope? Notification, string? Error) Parse(ReadOnlyMemory<byte> body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            return Validate(document.RootElement);
        }
        catch (JsonException ex)
        {
            var line = ex.LineNumber is null ? "" : $" (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine})";
            return (null, $"Malformed JSON{line}.");
        }
    }

    private static (NotificationEnvelope?, string?) Validate(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
            return (null, $"The body is a JSON {root.ValueKind.ToString().ToLowerInvariant()}; expected an Alertmanager webhook object.");

        var version = OptionalString(root, "version", out var error);
        if (error is not null) return (null, error);
        if (version != "4")
            return (null, version is null
                ? "Missing 'version'; only Alertmanager webhook version \"4\" is accepted."
                : $"Unsupported 'version' \"{version}\"; only Alertmanager webhook version \"4\" is accepted.");
        var groupKey = OptionalString(root, "groupKey", out error);
        if (error is not null) return (null, error);
        if (string.IsNullOrEmpty(groupKey)) return (null, "Missing 'groupKey'.");
        var receiver = OptionalString(root, "receiver", out error);
        if (error is not null) return (null, error);
        if (string.IsNullOrEmpty(receiver)) return (null, "Missing 'receiver'.");
        foreach (var name in new[] { "status", "externalURL" })
        {
            OptionalString(root, name, out error);
            if (error is not null) return (null, error);
        }
        foreach (var name in new[] { "groupLabels", "commonLabels", "commonAnnotations" })
        {
            if ((error = StringMap(root, name, name)) is not null) return (null, error);
        }
        if (root.TryGetProperty("truncatedAlerts", out var truncated) && truncated.ValueKind != JsonValueKind.Null && !truncated.TryGetInt32(out _))
            return (null, "'truncatedAlerts' must be an integer.");

        if (!root.TryGetProperty("alerts", out var alerts) || alerts.ValueKind == JsonValueKind.Null) return (null, "Missing 'alerts'.");
        if (alerts.ValueKind != JsonValueKind.Array) return (null, "'alerts' must be an array.");

        var list = new List<(string, DateTimeOffset, string)>(alerts.GetArrayLength());
        var i = 0;
        foreach (var alert in alerts.EnumerateArray())
        {
            var where = $"alerts[{i}]";
            if (alert.ValueKind == JsonValueKind.Null) return (null, $"{where} is null.");
            if (alert.ValueKind != JsonValueKind.Object) return (null, $"{where} must be an object.");
            var fingerprint = OptionalString(alert, "fingerprint", out error, where);
            if (error is not null) return (null, error);
            if (string.IsNullOrEmpty(fingerprint)) return (null, $"{where} has no 'fingerprint'.");
            where = $"alerts[{i}] ({fingerprint})";
            if (!alert.TryGetProperty("startsAt", out var startsAtElement) || startsAtElement.ValueKind == JsonValueKind.Null)
                return (null, $"{where} has no 'startsAt'.");
            if (startsAtElement.ValueKind != JsonValueKind.String || !startsAtElement.TryGetDateTimeOffset(out var startsAt))
                return (null, $"{where} has a 'startsAt' that is not an RFC 3339 time.");
            if (alert.TryGetProperty("endsAt", out var endsAt) && endsAt.ValueKind != JsonValueKind.Null
                && (endsAt.ValueKind != JsonValueKind.String || !endsAt.TryGetDateTimeOffset(out _)))
                return (null, $"{where} has an 'endsAt' that is not an RFC 3339 time.");
            var status = OptionalString(alert, "status", out error, where);
            if (error is not null) return (null, error);
            if (status is not ("firing" or "resolved"))
                return (null, status is null
                    ? $"{where} has no 'status'; expected \"firing\" or \"resolved\"."
                    : $"{where} has status \"{status}\"; expected \"firing\" or \"resolved\".");
            OptionalString(alert, "generatorURL", out error, where);
            if (error is not null) return (null, error);
            if ((error = StringMap(alert, "labels", $"{where}.labels")) is not null) return (null, error);
            if ((error = StringMap(alert, "annotations", $"{where}.annotations")) is not null) return (null, error);
            list.Add((fingerprint, startsAt, status));
            i++;
        }
        return (new NotificationEnvelope(receiver, groupKey, list), null);
    }

    private static string? OptionalString(JsonElement parent, string name, out string? error, string? where = null)
    {
        error = null;
        if (!parent.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind == JsonValueKind.String) return value.GetString();
        error = $"{(where is null ? "" : where + ": ")}'{name}' must be a string.";
        return null;
    }

    private static string? StringMap(JsonElement parent, string name, string where)
    {
        if (!parent.TryGetProperty(name, out var map) || map.ValueKind == JsonValueKind.Null) return null;
        if (map.ValueKind != JsonValueKind.Object) return $"'{where}' must be an object of strings.";
        foreach (var entry in map.EnumerateObject())
            if (entry.Value.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
                return $"'{where}.{entry.Name}' must be a string.";
        return null;
    }
}
