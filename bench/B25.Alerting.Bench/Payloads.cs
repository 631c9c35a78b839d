using System.Buffers;
using System.Text.Json;

namespace B25.Alerting.Bench;

/// <summary>
/// Alertmanager webhook v4 bodies. Every notification is its own alert group (distinct groupKey), so
/// every one opens an incident. The group's unique token <c>bx{id}x</c> is a group label, so it shows in
/// the Slack title and the stand-in can tell which notification a chat.postMessage belongs to.
/// </summary>
internal static class Payloads
{
    public const int Channels = 8;
    private static readonly DateTimeOffset StartsAt = DateTimeOffset.UtcNow.AddMinutes(-5);

    public static string Token(long id) => $"bx{id}x";

    /// <param name="severity">The alerts' <c>severity</c> label (the shipped routes send "critical" to Slack, PagerDuty and email).</param>
    /// <param name="action">An <c>action</c> label when not null ("emergency-stop": the shipped route asks the risk manager for a stop).</param>
    /// <param name="summary">Appended to every alert's summary: a different text on the same alerts is a repeat (Alertmanager's
    /// repeat_interval), not a duplicate of an earlier body.</param>
    public static byte[] Notification(long id, int alerts, int channel, string severity = "warning", string? action = null, string summary = "")
    {
        var buffer = new ArrayBufferWriter<byte>(alerts * 420 + 1024);
        using (var w = new Utf8JsonWriter(buffer))
        {
            var token = Token(id);
            var ch = $"c{channel}";
            w.WriteStartObject();
            w.WriteString("receiver", "bench");
            w.WriteString("status", "firing");
            w.WriteStartArray("alerts");
            for (var i = 0; i < alerts; i++)
            {
                w.WriteStartObject();
                w.WriteString("status", "firing");
                w.WriteStartObject("labels");
                if (action is not null) w.WriteString("action", action);
                w.WriteString("alertname", "BenchAlert");
                w.WriteString("bench_id", token);
                w.WriteString("channel", ch);
                if (action is not null) w.WriteString("exchange", "bench-exchange");
                w.WriteString("instance", $"host-{i:D5}:9100");
                w.WriteString("job", "b25-simulator");
                w.WriteString("severity", severity);
                w.WriteEndObject();
                w.WriteStartObject("annotations");
                w.WriteString("summary", $"Bench alert {i} of {token}: order gateway latency above threshold{summary}");
                w.WriteString("runbook_url", "https://runbooks.example.test/BenchAlert");
                w.WriteEndObject();
                w.WriteString("startsAt", StartsAt.AddMilliseconds(i).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'"));
                w.WriteString("endsAt", "0001-01-01T00:00:00Z");
                w.WriteString("generatorURL", "http://127.0.0.1:19090/graph?g0.expr=bench&g0.tab=1");
                w.WriteString("fingerprint", $"{id:x8}{i:x8}");
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("groupLabels");
            w.WriteString("alertname", "BenchAlert");
            w.WriteString("bench_id", token);
            w.WriteEndObject();
            w.WriteStartObject("commonLabels");
            if (action is not null) w.WriteString("action", action);
            w.WriteString("alertname", "BenchAlert");
            w.WriteString("bench_id", token);
            w.WriteString("channel", ch);
            if (action is not null) w.WriteString("exchange", "bench-exchange");
            w.WriteString("job", "b25-simulator");
            w.WriteString("severity", severity);
            w.WriteEndObject();
            w.WriteStartObject("commonAnnotations");
            w.WriteString("runbook_url", "https://runbooks.example.test/BenchAlert");
            w.WriteEndObject();
            w.WriteString("externalURL", "http://127.0.0.1:19093");
            w.WriteString("version", "4");
            w.WriteString("groupKey", $"{{}}/{{bench_id=\"{token}\"}}:{{alertname=\"BenchAlert\"}}");
            w.WriteNumber("truncatedAlerts", 0);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
