using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Observability;

/// <summary>
/// One JSON object per line in Serilog's compact shape (CLEF), which Promtail's pipeline reads
/// (compose/promtail/promtail-config.yml): <c>@t</c> time (UTC, RFC 3339), <c>@l</c> level (.NET's names:
/// Information, Warning, Error, Critical, ...), <c>@m</c> the message once, <c>@i</c> event id, <c>@x</c> exception,
/// <c>@tr</c>/<c>@sp</c> trace and span id when there is an activity, <c>category</c>, then the message's
/// properties. Selected with <c>Logging:Console:FormatterName=compact</c> (the production default).
/// </summary>
internal sealed class CompactJsonConsoleFormatter(IOptionsMonitor<ConsoleFormatterOptions> options) : ConsoleFormatter(FormatterName)
{
    public const string FormatterName = "compact";

    public const string TimeField = "@t";
    public const string LevelField = "@l";
    public const string MessageField = "@m";
    public const string TraceField = "@tr";

    private static readonly JsonWriterOptions Writer = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = logEntry.Formatter?.Invoke(logEntry.State, logEntry.Exception);
        if (message is null && logEntry.Exception is null) return;
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var json = new Utf8JsonWriter(buffer, Writer))
        {
            json.WriteStartObject();
            json.WriteString(TimeField, DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
            json.WriteString(LevelField, logEntry.LogLevel.ToString());
            if (message is not null) json.WriteString(MessageField, message);
            if (logEntry.EventId.Id != 0) json.WriteNumber("@i", logEntry.EventId.Id);
            if (logEntry.Exception is { } exception) json.WriteString("@x", exception.ToString());
            if (Activity.Current is { } activity)
            {
                json.WriteString(TraceField, activity.TraceId.ToHexString());
                json.WriteString("@sp", activity.SpanId.ToHexString());
            }
            json.WriteString("category", logEntry.Category);
            var written = new HashSet<string>(StringComparer.Ordinal);
            if (logEntry.State is IReadOnlyList<KeyValuePair<string, object?>> properties)
                foreach (var (key, value) in properties)
                    WriteProperty(json, key, value, written);
            if (options.CurrentValue.IncludeScopes && scopeProvider is not null)
                scopeProvider.ForEachScope((scope, state) =>
                {
                    if (scope is IReadOnlyList<KeyValuePair<string, object?>> pairs)
                        foreach (var (key, value) in pairs) WriteProperty(state.Json, key, value, state.Written);
                }, (Json: json, Written: written));
            json.WriteEndObject();
        }
        textWriter.Write(Encoding.UTF8.GetString(buffer.WrittenSpan));
        textWriter.Write('\n');
    }

    private static void WriteProperty(Utf8JsonWriter json, string key, object? value, HashSet<string> written)
    {
        if (key == "{OriginalFormat}" || key.StartsWith('@') || !written.Add(key)) return;
        switch (value)
        {
            case null: json.WriteNull(key); break;
            case bool b: json.WriteBoolean(key, b); break;
            case int or long or short or byte or uint or ulong or ushort:
                json.WriteNumber(key, Convert.ToDecimal(value, CultureInfo.InvariantCulture)); break;
            case double d when double.IsFinite(d): json.WriteNumber(key, d); break;
            case float f when float.IsFinite(f): json.WriteNumber(key, f); break;
            case decimal m: json.WriteNumber(key, m); break;
            case TimeSpan t: json.WriteString(key, t.ToString("c", CultureInfo.InvariantCulture)); break;
            case DateTimeOffset dto: json.WriteString(key, dto.ToString("O", CultureInfo.InvariantCulture)); break;
            case IFormattable formattable: json.WriteString(key, formattable.ToString(null, CultureInfo.InvariantCulture)); break;
            default: json.WriteString(key, value.ToString()); break;
        }
    }
}
