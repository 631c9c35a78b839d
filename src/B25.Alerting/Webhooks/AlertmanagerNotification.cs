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
/// Validates a webhook body against the version 4 payload in one pass of a reader, without building it as objects or as a
/// document (a 20,000-alert body would cost a hundred megabytes as dictionaries, and a JsonDocument's index of it is as large
/// as the body, rented from the shared pool, which keeps it: issue 11): every field the incident processor binds later is
/// checked here for its JSON type, and every string and property name for being Unicode text, so what is accepted always
/// binds (a body that cannot bind is retried by the processor forever and never pages; a 400 at least shows up in
/// Alertmanager's log). What is wrong is told in a fixed order, whatever the order of the body's fields: malformed JSON
/// first, then text that is not Unicode, then the notification's fields, then its alerts in order.
/// </summary>
internal static class NotificationParser
{
    /// <summary>Parses and validates a webhook body. Returns its envelope, or what is wrong with it.</summary>
    public static (NotificationEnvelope? Notification, string? Error) Parse(ReadOnlyMemory<byte> body)
    {
        // Utf8JsonReader does not check the text inside strings; the serializer does, when it decodes them, so text that
        // is not Unicode is refused here, before anything reads it.
        if (!Utf8.IsValid(body.Span))
        {
            var offset = FirstInvalidUtf8(body.Span);
            return (null, $"{Locate(body.Span, offset)}invalid UTF-8 (byte offset {offset}).");
        }
        var scanner = new Scanner(body.Span);
        try
        {
            var result = ReadNotification(ref scanner);
            // A refused field does not end the pass: malformed JSON or a bad escape further on is told first.
            scanner.DrainToEnd();
            return result;
        }
        catch (InvalidEscapeException escape)
        {
            // Nothing after the first bad escape matters but whether the JSON is well formed.
            try
            {
                scanner.DrainToEnd(checkEscapes: false);
            }
            catch (JsonException ex)
            {
                return (null, Malformed(ex));
            }
            return (null, $"{Locate(body.Span, escape.Offset)}an escape that is not valid UTF-16, such as a lone surrogate (byte offset {escape.Offset}).");
        }
        catch (JsonException ex)
        {
            return (null, Malformed(ex));
        }
        finally
        {
            scanner.Dispose();
        }
    }

    private static string Malformed(JsonException ex)
    {
        var line = ex.LineNumber is null ? "" : $" (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine})";
        return $"Malformed JSON{line}.";
    }

    private sealed class InvalidEscapeException(long offset) : Exception("An escape that is not valid UTF-16.")
    {
        public long Offset { get; } = offset;
    }

    /// <summary>
    /// A reader that checks, token by token, that escapes decode to valid UTF-16 ("\udc00" does not); only escaped tokens are
    /// decoded, into one reused buffer.
    /// </summary>
    private ref struct Scanner(ReadOnlySpan<byte> body)
    {
        private Utf8JsonReader _reader = new(body);
        private char[]? _buffer;

        public readonly JsonTokenType Token => _reader.TokenType;

        /// <summary>Moves to the next token; the document cannot end inside a value (the reader throws on a truncated one).</summary>
        public void Next(bool checkEscapes = true)
        {
            if (!_reader.Read()) throw new JsonException("The JSON ended inside a value.");
            if (checkEscapes && _reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && _reader.ValueIsEscaped)
                CheckEscape();
        }

        private void CheckEscape()
        {
            // Unescaped, a string has at most as many UTF-16 units as its escaped form has bytes.
            var length = _reader.ValueSpan.Length;
            if (_buffer is null || _buffer.Length < length)
            {
                if (_buffer is not null) ArrayPool<char>.Shared.Return(_buffer);
                _buffer = ArrayPool<char>.Shared.Rent(length);
            }
            try
            {
                _reader.CopyString(_buffer);
            }
            catch (InvalidOperationException)
            {
                throw new InvalidEscapeException(_reader.TokenStartIndex);
            }
        }

        /// <summary>Past the value whose first token is the current one.</summary>
        public void SkipValue(bool checkEscapes = true)
        {
            if (_reader.TokenType is not (JsonTokenType.StartObject or JsonTokenType.StartArray)) return;
            var depth = _reader.CurrentDepth;
            do Next(checkEscapes);
            while (_reader.CurrentDepth > depth || _reader.TokenType is not (JsonTokenType.EndObject or JsonTokenType.EndArray));
        }

        /// <summary>Reads what is left of the document: the reader throws on malformed JSON, trailing text included.</summary>
        public void DrainToEnd(bool checkEscapes = true)
        {
            while (_reader.Read())
            {
                if (checkEscapes && _reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && _reader.ValueIsEscaped)
                    CheckEscape();
            }
        }

        public readonly int Field(string[] fields)
        {
            for (var i = 0; i < fields.Length; i++)
                if (_reader.ValueTextEquals(fields[i])) return i;
            return -1;
        }

        public readonly string GetString() => _reader.GetString()!;

        public readonly bool IsTime(out DateTimeOffset value)
        {
            value = default;
            return _reader.TokenType == JsonTokenType.String && _reader.TryGetDateTimeOffset(out value);
        }

        public readonly bool IsUInt64 => _reader.TokenType == JsonTokenType.Number && _reader.TryGetUInt64(out _);

        public void Dispose()
        {
            if (_buffer is not null) ArrayPool<char>.Shared.Return(_buffer);
            _buffer = null;
        }
    }

    private enum Kind { Absent, Null, String, Array, Other }

    /// <summary>An optional string field: whether it is there, null, a string (and which), or of another type.</summary>
    private readonly record struct StringField(Kind Kind, string? Value)
    {
        public static StringField Read(ref Scanner scanner, bool keepValue = true)
        {
            switch (scanner.Token)
            {
                case JsonTokenType.Null: return new(Kind.Null, null);
                case JsonTokenType.String: return new(Kind.String, keepValue ? scanner.GetString() : null);
                default:
                    scanner.SkipValue();
                    return new(Kind.Other, null);
            }
        }

        /// <summary>As before: a string that is not one is an error; absent or null is no value.</summary>
        public string? Error(string name, string? where = null) =>
            Kind == Kind.Other ? $"{(where is null ? "" : where + ": ")}'{name}' must be a string." : null;
    }

    /// <summary>An optional object of strings (labels, annotations): fine, not an object, or the name of its first entry that is not a string.</summary>
    private readonly record struct StringMapField(bool NotObject, string? BadEntry)
    {
        public static StringMapField Read(ref Scanner scanner)
        {
            if (scanner.Token == JsonTokenType.Null) return default;
            if (scanner.Token != JsonTokenType.StartObject)
            {
                scanner.SkipValue();
                return new(true, null);
            }
            string? bad = null;
            while (true)
            {
                scanner.Next();
                if (scanner.Token == JsonTokenType.EndObject) return new(false, bad);
                var name = bad is null ? scanner.GetString() : null;
                scanner.Next();
                if (scanner.Token is JsonTokenType.String or JsonTokenType.Null) continue;
                bad ??= name;
                scanner.SkipValue();
            }
        }

        public string? Error(string where) =>
            NotObject ? $"'{where}' must be an object of strings." : BadEntry is not null ? $"'{where}.{BadEntry}' must be a string." : null;
    }

    private static readonly string[] NotificationFields =
        ["version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "alerts"];

    private static readonly string[] AlertFields = ["status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"];

    private static (NotificationEnvelope?, string?) ReadNotification(ref Scanner scanner)
    {
        scanner.Next();
        if (scanner.Token != JsonTokenType.StartObject)
        {
            var kind = scanner.Token switch
            {
                JsonTokenType.StartArray => "array",
                JsonTokenType.String => "string",
                JsonTokenType.Number => "number",
                JsonTokenType.True => "true",
                JsonTokenType.False => "false",
                _ => "null",
            };
            scanner.SkipValue();
            return (null, $"The body is a JSON {kind}; expected an Alertmanager webhook object.");
        }

        // A bound field that appears twice is refused: the serializer keeps the last but converts every copy, so an invalid
        // first copy would fail it.
        var seen = 0;
        string? repeated = null;
        StringField version = default, groupKey = default, receiver = default, status = default, externalUrl = default;
        StringMapField groupLabels = default, commonLabels = default, commonAnnotations = default;
        var truncatedValid = true;
        var alertsKind = Kind.Absent;
        List<(string, DateTimeOffset, string)>? alerts = null;
        string? alertError = null;
        while (true)
        {
            scanner.Next();
            if (scanner.Token == JsonTokenType.EndObject) break;
            var field = scanner.Field(NotificationFields);
            scanner.Next();
            if (field < 0)
            {
                scanner.SkipValue();
                continue;
            }
            if ((seen & (1 << field)) != 0) repeated ??= NotificationFields[field];
            seen |= 1 << field;
            switch (NotificationFields[field])
            {
                case "version": version = StringField.Read(ref scanner); break;
                case "groupKey": groupKey = StringField.Read(ref scanner); break;
                case "receiver": receiver = StringField.Read(ref scanner); break;
                case "status": status = StringField.Read(ref scanner, keepValue: false); break;
                case "externalURL": externalUrl = StringField.Read(ref scanner, keepValue: false); break;
                case "groupLabels": groupLabels = StringMapField.Read(ref scanner); break;
                case "commonLabels": commonLabels = StringMapField.Read(ref scanner); break;
                case "commonAnnotations": commonAnnotations = StringMapField.Read(ref scanner); break;
                case "truncatedAlerts":
                    truncatedValid = scanner.Token == JsonTokenType.Null || scanner.IsUInt64;
                    scanner.SkipValue();
                    break;
                case "alerts":
                    alertsKind = scanner.Token switch { JsonTokenType.Null => Kind.Null, JsonTokenType.StartArray => Kind.Array, _ => Kind.Other };
                    if (alertsKind != Kind.Array)
                    {
                        scanner.SkipValue();
                        break;
                    }
                    (alerts, alertError) = ReadAlerts(ref scanner);
                    break;
            }
        }

        if (repeated is not null) return (null, $"'{repeated}' appears more than once.");
        if (version.Error("version") is { } error) return (null, error);
        if (version.Value != "4")
            return (null, version.Value is null
                ? "Missing 'version'; only Alertmanager webhook version \"4\" is accepted."
                : $"Unsupported 'version' \"{version.Value}\"; only Alertmanager webhook version \"4\" is accepted.");
        if (groupKey.Error("groupKey") is { } groupKeyError) return (null, groupKeyError);
        if (string.IsNullOrEmpty(groupKey.Value)) return (null, "Missing 'groupKey'.");
        if (receiver.Error("receiver") is { } receiverError) return (null, receiverError);
        if (string.IsNullOrEmpty(receiver.Value)) return (null, "Missing 'receiver'.");
        if ((error = status.Error("status") ?? externalUrl.Error("externalURL")) is not null) return (null, error);
        if ((error = groupLabels.Error("groupLabels") ?? commonLabels.Error("commonLabels") ?? commonAnnotations.Error("commonAnnotations")) is not null)
            return (null, error);
        if (!truncatedValid)
            return (null, "'truncatedAlerts' must be a whole number from 0 to 18446744073709551615 (Alertmanager's uint64).");
        if (alertsKind is Kind.Absent or Kind.Null) return (null, "Missing 'alerts'.");
        if (alertsKind == Kind.Other) return (null, "'alerts' must be an array.");
        if (alertError is not null) return (null, alertError);
        return (new NotificationEnvelope(receiver.Value, groupKey.Value, alerts!), null);
    }

    /// <summary>The alerts' identities, or what is wrong with the first alert that is wrong (the rest are only read).</summary>
    private static (List<(string, DateTimeOffset, string)>, string?) ReadAlerts(ref Scanner scanner)
    {
        var list = new List<(string, DateTimeOffset, string)>();
        string? error = null;
        for (var i = 0; ; i++)
        {
            scanner.Next();
            if (scanner.Token == JsonTokenType.EndArray) return (list, error);
            if (error is not null)
            {
                scanner.SkipValue();
                continue;
            }
            if (scanner.Token == JsonTokenType.Null)
            {
                error = $"alerts[{i}] is null.";
                continue;
            }
            if (scanner.Token != JsonTokenType.StartObject)
            {
                error = $"alerts[{i}] must be an object.";
                scanner.SkipValue();
                continue;
            }
            var (alert, alertError) = ReadAlert(ref scanner, i);
            if (alertError is not null) error = alertError;
            else list.Add(alert);
        }
    }

    private static ((string, DateTimeOffset, string), string?) ReadAlert(ref Scanner scanner, int index)
    {
        var seen = 0;
        string? repeated = null;
        StringField fingerprint = default, status = default, generatorUrl = default;
        StringMapField labels = default, annotations = default;
        (Kind Kind, bool Valid, DateTimeOffset Value) startsAt = default, endsAt = default;
        while (true)
        {
            scanner.Next();
            if (scanner.Token == JsonTokenType.EndObject) break;
            var field = scanner.Field(AlertFields);
            scanner.Next();
            if (field < 0)
            {
                scanner.SkipValue();
                continue;
            }
            if ((seen & (1 << field)) != 0) repeated ??= AlertFields[field];
            seen |= 1 << field;
            switch (AlertFields[field])
            {
                case "fingerprint": fingerprint = StringField.Read(ref scanner); break;
                case "status": status = StringField.Read(ref scanner); break;
                case "generatorURL": generatorUrl = StringField.Read(ref scanner, keepValue: false); break;
                case "labels": labels = StringMapField.Read(ref scanner); break;
                case "annotations": annotations = StringMapField.Read(ref scanner); break;
                case "startsAt" or "endsAt":
                    var kind = scanner.Token switch { JsonTokenType.Null => Kind.Null, JsonTokenType.String => Kind.String, _ => Kind.Other };
                    var time = (kind, scanner.IsTime(out var value), value);
                    scanner.SkipValue();
                    if (field == Array.IndexOf(AlertFields, "startsAt")) startsAt = time;
                    else endsAt = time;
                    break;
            }
        }

        var where = $"alerts[{index}]";
        if (repeated is not null) return (default, $"{where}: '{repeated}' appears more than once.");
        if (fingerprint.Error("fingerprint", where) is { } error) return (default, error);
        if (string.IsNullOrEmpty(fingerprint.Value)) return (default, $"{where} has no 'fingerprint'.");
        where = $"alerts[{index}] ({fingerprint.Value})";
        if (startsAt.Kind is Kind.Absent or Kind.Null) return (default, $"{where} has no 'startsAt'.");
        if (!startsAt.Valid) return (default, $"{where} has a 'startsAt' that is not an RFC 3339 time.");
        if (endsAt.Kind is not (Kind.Absent or Kind.Null) && !endsAt.Valid)
            return (default, $"{where} has an 'endsAt' that is not an RFC 3339 time.");
        if (status.Error("status", where) is { } statusError) return (default, statusError);
        if (status.Value is not ("firing" or "resolved"))
            return (default, status.Value is null
                ? $"{where} has no 'status'; expected \"firing\" or \"resolved\"."
                : $"{where} has status \"{status.Value}\"; expected \"firing\" or \"resolved\".");
        if ((error = generatorUrl.Error("generatorURL", where) ?? labels.Error($"{where}.labels") ?? annotations.Error($"{where}.annotations")) is not null)
            return (default, error);
        return ((fingerprint.Value, startsAt.Value, status.Value), null);
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
}
