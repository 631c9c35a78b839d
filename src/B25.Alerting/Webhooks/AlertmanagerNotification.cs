using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Unicode;

namespace B25.Alerting.Webhooks;

/// <summary>Alertmanager webhook payload, version 4: one notification of one alert group.</summary>
internal sealed class AlertmanagerNotification
{
    [JsonPropertyName("version")] public string? Version { get; set; }
    [JsonPropertyName("groupKey")] public string? GroupKey { get; set; }
    /// <summary>Alertmanager's uint64; kept as a long (storage is signed 64-bit): a larger count is shown as long.MaxValue.</summary>
    [JsonPropertyName("truncatedAlerts"), JsonConverter(typeof(UInt64CountConverter))] public long? TruncatedAlerts { get; set; }
    [JsonPropertyName("status")] public string? Status { get; set; }
    [JsonPropertyName("receiver")] public string? Receiver { get; set; }
    [JsonPropertyName("groupLabels")] public Dictionary<string, string>? GroupLabels { get; set; }
    [JsonPropertyName("commonLabels")] public Dictionary<string, string>? CommonLabels { get; set; }
    [JsonPropertyName("commonAnnotations")] public Dictionary<string, string>? CommonAnnotations { get; set; }
    [JsonPropertyName("externalURL")] public string? ExternalUrl { get; set; }
    [JsonPropertyName("alerts")] public List<AlertmanagerAlert>? Alerts { get; set; }
}

/// <summary>Reads a JSON uint64 into a long, clamping what a signed 64-bit column cannot hold.</summary>
internal sealed class UInt64CountConverter : JsonConverter<long?>
{
    public override long? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetUInt64(out var value))
            throw new JsonException("expected a whole number from 0 to 18446744073709551615");
        return value > long.MaxValue ? long.MaxValue : (long)value;
    }

    public override void Write(Utf8JsonWriter writer, long? value, JsonSerializerOptions options)
    {
        if (value is { } v) writer.WriteNumberValue(v);
        else writer.WriteNullValue();
    }
}

// The alerts of one notification repeat most of their strings (label names; the values the group shares, such as alertname,
// job or severity; status; the rule's generator URL): bound through RepeatedStrings, a storm's 20,000 alerts share them
// instead of holding tens of thousands of copies while the notification is applied (issue 11).
internal sealed class AlertmanagerAlert
{
    [JsonPropertyName("status"), JsonConverter(typeof(RepeatedStringConverter))] public string? Status { get; set; }
    [JsonPropertyName("labels"), JsonConverter(typeof(RepeatedStringMapConverter))] public Dictionary<string, string>? Labels { get; set; }
    [JsonPropertyName("annotations"), JsonConverter(typeof(RepeatedStringMapConverter))] public Dictionary<string, string>? Annotations { get; set; }
    [JsonPropertyName("startsAt")] public DateTimeOffset? StartsAt { get; set; }
    [JsonPropertyName("endsAt")] public DateTimeOffset? EndsAt { get; set; }
    [JsonPropertyName("generatorURL"), JsonConverter(typeof(RepeatedStringConverter))] public string? GeneratorUrl { get; set; }
    [JsonPropertyName("fingerprint")] public string? Fingerprint { get; set; }

    public bool IsFiring => Status == "firing";
}

/// <summary>
/// Returns one string instance for text that was read recently: a small lossy table (a slot per hash; a newer string
/// replaces an older one) shared by every thread, safe without locks since a slot holds an immutable string or null.
/// Only short, unescaped text is shared; the rest is read as usual. Bounded: at most <see cref="Slots"/> strings of at most
/// <see cref="MaxBytes"/> bytes stay referenced.
/// </summary>
internal static class RepeatedStrings
{
    private const int Slots = 4096;
    private const int MaxBytes = 128;
    private static readonly string?[] Table = new string?[Slots];

    public static string Read(ref Utf8JsonReader reader)
    {
        if (reader.ValueIsEscaped || reader.HasValueSequence || reader.ValueSpan.Length > MaxBytes) return reader.GetString()!;
        var hash = new HashCode();
        hash.AddBytes(reader.ValueSpan);
        var slot = (hash.ToHashCode() & int.MaxValue) % Slots;
        var known = Volatile.Read(ref Table[slot]);
        if (known is not null && reader.ValueTextEquals(known)) return known;
        var text = reader.GetString()!;
        Volatile.Write(ref Table[slot], text);
        return text;
    }
}

/// <summary>A JSON string, through <see cref="RepeatedStrings"/> (JSON null is bound by the serializer, as before).</summary>
internal sealed class RepeatedStringConverter : JsonConverter<string>
{
    public override string Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType == JsonTokenType.String
            ? RepeatedStrings.Read(ref reader)
            : throw new JsonException($"expected a string, found {reader.TokenType}");

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);
}

/// <summary>
/// An object of strings (labels, annotations), names and values through <see cref="RepeatedStrings"/>; bound as the
/// serializer binds a <c>Dictionary&lt;string, string&gt;</c>: a null value stays null, a repeated name keeps the last value.
/// </summary>
internal sealed class RepeatedStringMapConverter : JsonConverter<Dictionary<string, string>>
{
    public override Dictionary<string, string> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartObject) throw new JsonException($"expected an object of strings, found {reader.TokenType}");
        var map = new Dictionary<string, string>();
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.EndObject) return map;
            var name = RepeatedStrings.Read(ref reader);
            reader.Read();
            map[name] = reader.TokenType switch
            {
                JsonTokenType.String => RepeatedStrings.Read(ref reader),
                JsonTokenType.Null => null!,
                _ => throw new JsonException($"expected a string for '{name}', found {reader.TokenType}"),
            };
        }
        throw new JsonException("the object of strings does not end");
    }

    public override void Write(Utf8JsonWriter writer, Dictionary<string, string> value, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        foreach (var (name, text) in value)
        {
            if (text is null) writer.WriteNull(name);
            else writer.WriteString(name, text);
        }
        writer.WriteEndObject();
    }
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
/// processor binds later is checked here for its JSON type, and every string and property name for
/// being Unicode text, so what is accepted always binds (a body that cannot bind is retried by the
/// processor forever and never pages; a 400 at least shows up in Alertmanager's log).
/// </summary>
internal static class NotificationParser
{
    /// <summary>Parses and validates a webhook body. Returns its envelope, or what is wrong with it.</summary>
    public static (NotificationEnvelope? Notification, string? Error) Parse(ReadOnlyMemory<byte> body)
    {
        // Neither JsonDocument nor Utf8JsonReader checks the text inside strings; the serializer does,
        // when it decodes them, so text that is not Unicode is refused here, before anything reads it.
        if (!Utf8.IsValid(body.Span))
        {
            var offset = FirstInvalidUtf8(body.Span);
            return (null, $"{Locate(body.Span, offset)}invalid UTF-8 (byte offset {offset}).");
        }
        try
        {
            using var document = JsonDocument.Parse(body);
            if (FirstInvalidEscape(body.Span) is { } escape)
                return (null, $"{Locate(body.Span, escape)}an escape that is not valid UTF-16, such as a lone surrogate (byte offset {escape}).");
            return Validate(document.RootElement);
        }
        catch (JsonException ex)
        {
            var line = ex.LineNumber is null ? "" : $" (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine})";
            return (null, $"Malformed JSON{line}.");
        }
    }

    /// <summary>
    /// The byte offset of the first string or property name whose escapes do not decode to valid UTF-16
    /// ("\udc00"), or null. Only escaped tokens are decoded, into one reused buffer: a body with no
    /// escapes costs one pass of the reader and no allocation.
    /// </summary>
    private static long? FirstInvalidEscape(ReadOnlySpan<byte> body)
    {
        var reader = new Utf8JsonReader(body);
        char[]? buffer = null;
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName) || !reader.ValueIsEscaped) continue;
                // Unescaped, a string has at most as many UTF-16 units as its escaped form has bytes.
                var length = reader.ValueSpan.Length;
                if (buffer is null || buffer.Length < length)
                {
                    if (buffer is not null) ArrayPool<char>.Shared.Return(buffer);
                    buffer = ArrayPool<char>.Shared.Rent(length);
                }
                try
                {
                    reader.CopyString(buffer);
                }
                catch (InvalidOperationException)
                {
                    return reader.TokenStartIndex;
                }
            }
            return null;
        }
        finally
        {
            if (buffer is not null) ArrayPool<char>.Shared.Return(buffer);
        }
    }

    private static long FirstInvalidUtf8(ReadOnlySpan<byte> body)
    {
        Span<char> chars = stackalloc char[1024];
        long offset = 0;
        while (true)
        {
            var status = Utf8.ToUtf16(body, chars, out var read, out _, replaceInvalidSequences: false);
            if (status != OperationStatus.DestinationTooSmall) return offset + read;
            offset += read;
            body = body[read..];
        }
    }

    /// <summary>
    /// Where the token at this byte offset sits ("alerts[3].labels.instance: "), for the error message;
    /// only run on a body that is refused. Falls back to nothing when the JSON cannot be read that far.
    /// </summary>
    private static string Locate(ReadOnlySpan<byte> body, long offset)
    {
        var frames = new List<(bool IsArray, int Index, string? Name)>();
        var reader = new Utf8JsonReader(body);
        try
        {
            while (reader.Read())
            {
                var token = reader.TokenType;
                var isValue = token is not (JsonTokenType.PropertyName or JsonTokenType.EndObject or JsonTokenType.EndArray);
                if (isValue && frames.Count > 0 && frames[^1].IsArray)
                    frames[^1] = frames[^1] with { Index = frames[^1].Index + 1 };
                if (offset < reader.BytesConsumed && offset >= reader.TokenStartIndex)
                {
                    if (token != JsonTokenType.PropertyName)
                        return Path(frames, frames.Count) is { Length: > 0 } path ? path + ": " : "";
                    return Path(frames, frames.Count - 1) is { Length: > 0 } parent ? parent + " (a property name): " : "a property name: ";
                }
                switch (token)
                {
                    case JsonTokenType.PropertyName:
                        frames[^1] = frames[^1] with { Name = reader.GetString() };
                        break;
                    case JsonTokenType.StartObject or JsonTokenType.StartArray:
                        frames.Add((token == JsonTokenType.StartArray, -1, null));
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        frames.RemoveAt(frames.Count - 1);
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
        }
        return "";

        static string Path(List<(bool IsArray, int Index, string? Name)> frames, int count)
        {
            var path = new StringBuilder();
            foreach (var (isArray, index, name) in frames.Take(count))
            {
                if (isArray) path.Append('[').Append(index).Append(']');
                else if (name is not null) path.Append(path.Length == 0 ? "" : ".").Append(name);
            }
            return path.ToString();
        }
    }

    private static (NotificationEnvelope?, string?) Validate(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
            return (null, $"The body is a JSON {root.ValueKind.ToString().ToLowerInvariant()}; expected an Alertmanager webhook object.");

        if (Repeated(root, NotificationFields) is { } repeated)
            return (null, $"'{repeated}' appears more than once.");
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
        if (root.TryGetProperty("truncatedAlerts", out var truncated) && truncated.ValueKind != JsonValueKind.Null
            && (truncated.ValueKind != JsonValueKind.Number || !truncated.TryGetUInt64(out _)))
            return (null, "'truncatedAlerts' must be a whole number from 0 to 18446744073709551615 (Alertmanager's uint64).");

        if (!root.TryGetProperty("alerts", out var alerts) || alerts.ValueKind == JsonValueKind.Null) return (null, "Missing 'alerts'.");
        if (alerts.ValueKind != JsonValueKind.Array) return (null, "'alerts' must be an array.");

        var list = new List<(string, DateTimeOffset, string)>(alerts.GetArrayLength());
        var i = 0;
        foreach (var alert in alerts.EnumerateArray())
        {
            var where = $"alerts[{i}]";
            if (alert.ValueKind == JsonValueKind.Null) return (null, $"{where} is null.");
            if (alert.ValueKind != JsonValueKind.Object) return (null, $"{where} must be an object.");
            if (Repeated(alert, AlertFields) is { } repeatedField)
                return (null, $"{where}: '{repeatedField}' appears more than once.");
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

    private static readonly string[] NotificationFields =
        ["version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "alerts"];

    private static readonly string[] AlertFields = ["status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"];

    /// <summary>
    /// A bound field that appears twice, or null. The lookups here see only the last copy; the serializer
    /// keeps the last but converts every copy, so an invalid first copy would fail it.
    /// </summary>
    private static string? Repeated(JsonElement parent, string[] fields)
    {
        var seen = 0;
        foreach (var property in parent.EnumerateObject())
        {
            for (var i = 0; i < fields.Length; i++)
            {
                if (!property.NameEquals(fields[i])) continue;
                if ((seen & (1 << i)) != 0) return fields[i];
                seen |= 1 << i;
                break;
            }
        }
        return null;
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
