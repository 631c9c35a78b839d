using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using B25.Alerting.Webhooks;
using Xunit.Abstractions;
using static B25.Alerting.Tests.Support.Notifications;

namespace B25.Alerting.Tests;

/// <summary>
/// What the intake accepts, the incident processor can deserialize: a body that cannot bind would be
/// answered 2xx and then fail on every attempt, never paging. Checked over a corpus of edge cases.
/// </summary>
public sealed class NotificationParserTests(ITestOutputHelper output)
{
    private static string Valid() => Body("g1", Firing("a1"), Resolved("a2"));

    /// <summary>Text replacements of a valid body: each names a case and says whether it must be accepted.</summary>
    private static IEnumerable<(string Case, byte[] Body, bool? Accepted)> Corpus()
    {
        var valid = Valid();
        (string, byte[], bool?) Text(string name, string body, bool? accepted) => (name, Encoding.UTF8.GetBytes(body), accepted);
        (string, byte[], bool?) Replace(string name, string from, string to, bool? accepted)
        {
            Assert.Contains(from, valid);
            return Text(name, valid.Replace(from, to), accepted);
        }
        (string, byte[], bool?) Bytes(string name, string from, byte[] to)
        {
            var at = valid.IndexOf(from, StringComparison.Ordinal);
            Assert.True(at >= 0, from);
            var prefix = Encoding.UTF8.GetBytes(valid[..at]);
            var suffix = Encoding.UTF8.GetBytes(valid[(at + from.Length)..]);
            return (name, [.. prefix, .. to, .. suffix], false);
        }

        yield return Text("valid", valid, true);
        yield return Text("nulls and unknown fields", Mutate(b =>
        {
            b["truncatedAlerts"] = null;
            b["commonAnnotations"] = null;
            b["groupLabels"] = null;
            b["somethingNew"] = new JsonObject { ["nested"] = new JsonArray(1, "x", null) };
            var alert = b["alerts"]![0]!.AsObject();
            alert["endsAt"] = null;
            alert["generatorURL"] = null;
            alert["labels"]!["empty"] = null;
            alert["annotations"] = null;
        }), true);
        yield return Text("no alerts", Mutate(b => b["alerts"] = new JsonArray()), true);
        yield return Text("null alert", Mutate(b => b["alerts"]!.AsArray().Add(null)), false);

        // Duplicate label names: the serializer keeps the last; the intake checks every copy.
        yield return Replace("duplicate label name", "\"severity\":\"critical\",", "\"severity\":\"critical\",\"severity\":\"warning\",", true);
        yield return Replace("duplicate label name of another type", "\"severity\":\"critical\",", "\"severity\":5,\"severity\":\"warning\",", false);
        // A bound field twice: the serializer converts every copy, so both would have to be valid.
        yield return Replace("duplicate alerts", "\"alerts\":[", "\"alerts\":[{\"labels\":{\"x\":1}}],\"alerts\":[", false);
        yield return Replace("duplicate alerts, invalid last", "\"groupLabels\":", "\"alerts\":[{\"labels\":{\"x\":1}}],\"groupLabels\":", false);
        yield return Replace("duplicate startsAt, invalid first", "\"startsAt\":", "\"startsAt\":\"soon\",\"startsAt\":", false);
        yield return Replace("duplicate fingerprint", "\"fingerprint\":", "\"fingerprint\":\"x\",\"fingerprint\":", false);
        yield return Replace("duplicate unknown field", "\"version\":", "\"x\":{},\"x\":[1],\"version\":", true);
        yield return Replace("duplicate startsAt, invalid last", "\"generatorURL\":", "\"startsAt\":\"soon\",\"generatorURL\":", false);
        yield return Replace("duplicate labels", "\"annotations\":", "\"labels\":{\"a\":[]},\"annotations\":", false);
        yield return Replace("property name in other case", "\"groupLabels\":", "\"Alerts\":5,\"groupLabels\":", true);

        // Times: whatever JsonElement.TryGetDateTimeOffset takes, the DateTimeOffset converter takes.
        foreach (var time in new[]
                 {
                     "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59.9999999Z", "9999-12-31T23:59:59.9999999-01:00",
                     "2026-11-25T12:00:00.123456789Z", "2026-11-25T12:00:00.12345678901234567890Z", "2026-11-25T12:00:00", "2026-11-25",
                     "2026-11-25T12:00Z", "2026-11-25T24:00:00Z", "2016-12-31T23:59:60Z", "2026-02-30T00:00:00Z", "2026\\u002d11-25T12:00:00Z",
                     "2026-11-25t12:00:00z", " 2026-11-25T12:00:00Z", "2026-11-25T12:00:00+14:00", "2026-11-25T12:00:00+14:01",
                     "2026-11-25T12:00:00.Z", "2026-11-25T12:00:00,5Z", "+2026-11-25T12:00:00Z", "",
                 })
        {
            yield return Replace($"startsAt \"{time}\"", "\"startsAt\":\"2026-11-25T12:00:00.000Z\"", $"\"startsAt\":\"{time}\"", null);
            yield return Replace($"endsAt \"{time}\"", "\"endsAt\":\"0001-01-01T00:00:00Z\"", $"\"endsAt\":\"{time}\"", null);
        }
        yield return Replace("endsAt number", "\"endsAt\":\"0001-01-01T00:00:00Z\"", "\"endsAt\":0", false);

        // Numbers.
        foreach (var number in new[] { "0", "-0", "1.0", "1e2", "2147483647", "2147483648", "-2147483649", "\"5\"", "true", "[]" })
            yield return Replace($"truncatedAlerts {number}", "\"truncatedAlerts\":0", $"\"truncatedAlerts\":{number}", null);
        // Alertmanager's truncatedAlerts is a uint64.
        foreach (var (number, accepted) in new[] { ("2147483648", true), ("9223372036854775808", true), ("18446744073709551615", true),
                                                   ("18446744073709551616", false), ("-1", false) })
            yield return Replace($"truncatedAlerts {number} (uint64)", "\"truncatedAlerts\":0", $"\"truncatedAlerts\":{number}", accepted);

        // Text: invalid UTF-8 and escapes that do not decode to UTF-16, in values and in names.
        yield return Bytes("invalid UTF-8 in a label value", "\"instance\":\"a1\"", [.. "\"instance\":\"a"u8, 0xC3, 0x28, .. "\""u8]);
        yield return Bytes("invalid UTF-8 in a label name", "\"instance\":\"a1\"", [.. "\"inst"u8, 0xFF, .. "ance\":\"a1\""u8]);
        yield return Bytes("overlong UTF-8", "\"instance\":\"a1\"", [.. "\"instance\":\"a"u8, 0xC0, 0xAF, .. "\""u8]);
        yield return Bytes("UTF-8 encoded surrogate", "\"instance\":\"a1\"", [.. "\"instance\":\"a"u8, 0xED, 0xA0, 0x80, .. "\""u8]);
        yield return Bytes("truncated UTF-8 sequence", "\"instance\":\"a1\"", [.. "\"instance\":\"a"u8, 0xE2, 0x82, .. "\""u8]);
        yield return Bytes("invalid UTF-8 in the fingerprint", "\"fingerprint\":\"a1\"", [.. "\"fingerprint\":\"a"u8, 0x80, .. "\""u8]);
        yield return Bytes("invalid UTF-8 in an unknown field", "\"version\":", [.. "\"other\":\""u8, 0xFE, .. "\",\"version\":"u8]);
        yield return Bytes("byte order mark", "{\"receiver\"", [0xEF, 0xBB, 0xBF, .. "{\"receiver\""u8]);
        foreach (var escape in new[] { "\\udc00", "\\ud800", "\\ud800x", "\\ud800\\ud800", "\\udfff\\ud800", "a\\ud83d" })
        {
            yield return Replace($"label value {escape}", "\"instance\":\"a1\"", $"\"instance\":\"{escape}\"", false);
            yield return Replace($"label name {escape}", "\"instance\":\"a1\"", $"\"in{escape}\":\"a1\"", false);
            yield return Replace($"annotation {escape}", "\"summary\":\"HighErrorRate on a1\"", $"\"summary\":\"{escape}\"", false);
            yield return Replace($"top-level name {escape}", "\"version\":", $"\"{escape}\":1,\"version\":", false);
            yield return Replace($"nested unknown {escape}", "\"version\":", $"\"x\":{{\"y\":[\"{escape}\"]}},\"version\":", false);
        }
        foreach (var escape in new[] { "\\ud83d\\ude00", "\\u0000", "\\u0026\\u003c\\u003e", "\\\"\\\\\\/\\b\\f\\n\\r\\t", "\\uFFFF", "\\uFEFF" })
        {
            yield return Replace($"label value {escape}", "\"instance\":\"a1\"", $"\"instance\":\"{escape}\"", true);
            yield return Replace($"label name {escape}", "\"instance\":\"a1\"", $"\"in{escape}\":\"a1\"", true);
        }
        yield return Replace("raw emoji and CJK", "\"instance\":\"a1\"", "\"instance\":\"😀 注文\"", true);
        yield return Replace("escaped field name", "\"fingerprint\":", "\"fingerp\\u0072int\":", true);

        // Depth: the same limit for the document, the reader and the serializer.
        foreach (var depth in new[] { 60, 62, 63, 64, 65, 200 })
            yield return Replace($"unknown field nested {depth} deep", "\"version\":",
                $"\"deep\":{new string('[', depth)}{new string(']', depth)},\"version\":", null);
        yield return Text("not an object", "[]", false);
        yield return Text("truncated", valid[..^10], false);
    }

    private static string Mutate(Action<JsonObject> change)
    {
        var body = Build("g1", "b25-critical", Firing("a1"), Resolved("a2"));
        change(body);
        return body.ToJsonString();
    }

    [Fact]
    public void Every_accepted_body_deserializes_as_the_processor_does()
    {
        var failures = new List<string>();
        var accepted = 0;
        foreach (var (name, body, expected) in Corpus())
        {
            NotificationEnvelope? notification;
            string? error;
            try
            {
                (notification, error) = NotificationParser.Parse(body);
            }
            catch (Exception ex)
            {
                // The endpoint would answer 500, which Alertmanager retries forever.
                failures.Add($"{name}: the parser threw {ex.GetType().Name}: {ex.Message}");
                continue;
            }
            if (expected is { } must && must != (error is null))
                failures.Add($"{name}: expected {(must ? "accepted" : "rejected")}, got {error ?? "accepted"}");
            if (error is not null)
            {
                output.WriteLine($"rejected {name}: {error}");
                continue;
            }
            accepted++;
            output.WriteLine($"accepted {name}");
            try
            {
                var bound = JsonSerializer.Deserialize(body, WebhookJsonContext.Default.AlertmanagerNotification)!;
                // The envelope (the alerts' identities) is what the serializer binds, too.
                var identities = bound.Alerts!.Select(a => (a.Fingerprint, a.StartsAt!.Value, a.Status)).ToList();
                if (!identities.SequenceEqual(notification!.Alerts.Select(a => ((string?)a.Fingerprint, a.StartsAt, (string?)a.Status))))
                    failures.Add($"{name}: the processor binds other alerts than the intake validated");
            }
            catch (Exception ex)
            {
                failures.Add($"{name}: accepted, but the processor cannot bind it: {ex.GetType().Name}: {ex.Message}");
            }
        }
        Assert.True(accepted > 20, $"the corpus accepts a fair number of cases ({accepted})");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Repeated_strings_bind_as_the_serializer_binds_them()
    {
        // RepeatedStrings shares equal label, annotation, status and URL text between alerts: what it binds must be what the
        // serializer's own converters bind, for every body the intake accepts, whether the text was seen before or not.
        var alerts = Enumerable.Range(0, 50).Select(i => Firing($"r{i}", severity: i % 2 == 0 ? "critical" : "warning") with
        {
            Labels = new()
            {
                ["alertname"] = "HighErrorRate", ["severity"] = i % 2 == 0 ? "critical" : "warning", ["instance"] = $"host-{i}",
                ["quoted \"name\""] = "a \"value\" <&>", ["long"] = new string('x', 100 + i * 3), ["empty"] = "",
                ["注文"] = "😀",
            },
        }).ToArray();
        var bodies = Corpus().Select(c => (c.Case, c.Body))
            .Append(("many alerts", Encoding.UTF8.GetBytes(Body("g-many", alerts))))
            .Append(("escaped repeats", Encoding.UTF8.GetBytes(Body("g-many", alerts).Replace("HighErrorRate", "High\\u0045rrorRate"))))
            .Where(c => NotificationParser.Parse(c.Item2).Error is null)
            .ToList();
        var failures = new List<string>();
        for (var pass = 0; pass < 2; pass++)
        {
            foreach (var (name, body) in bodies)
            {
                var bound = JsonSerializer.Deserialize(body, WebhookJsonContext.Default.AlertmanagerNotification)!.Alerts!;
                var plain = JsonSerializer.Deserialize(body, PlainJsonContext.Default.PlainNotification)!.Alerts!;
                for (var i = 0; i < plain.Count; i++)
                {
                    var (b, p) = (bound[i], plain[i]);
                    if (b.Status != p.Status || b.GeneratorUrl != p.GeneratorUrl || !SameMap(b.Labels, p.Labels) || !SameMap(b.Annotations, p.Annotations))
                        failures.Add($"{name}, pass {pass}: alerts[{i}] binds otherwise");
                }
            }
        }
        Assert.True(bodies.Count > 20, $"bodies checked: {bodies.Count}");
        Assert.True(failures.Count == 0, string.Join("\n", failures));

        static bool SameMap(Dictionary<string, string>? a, Dictionary<string, string>? b) =>
            a is null ? b is null : b is not null && a.Count == b.Count && a.All(e => b.TryGetValue(e.Key, out var v) && v == e.Value);
    }

    [Fact]
    public void The_notification_id_is_the_hash_of_its_group_and_sorted_alert_identities()
    {
        // The identity journaled notifications are known by: it must not change between versions (a retry after an upgrade
        // is still a duplicate), so it is checked against the text it is defined as.
        var body = Encoding.UTF8.GetBytes(Body("{}:{alertname=\"注文\"}", Firing("b\u00e9", startsAt: T0.AddMilliseconds(1)), Resolved("a"),
            Firing("a|x", startsAt: T0.ToOffset(TimeSpan.FromHours(2)))));
        var notification = NotificationParser.Parse(body).Notification!;
        var text = new StringBuilder($"{notification.Receiver}\n{notification.GroupKey}\n");
        foreach (var line in notification.Alerts.Select(a => $"{a.Fingerprint}|{AlertKey.Format(a.StartsAt)}|{a.Status}").Order(StringComparer.Ordinal))
            text.Append(line).Append('\n');

        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString()))),
            NotificationIdentity.NotificationId(notification));
    }

    [Fact]
    public void Rejections_name_where_the_text_is_wrong()
    {
        var json = Valid().Replace("\"instance\":\"a1\"", "\"instance\":\"\\udc00\"");
        var (_, error) = NotificationParser.Parse(Encoding.UTF8.GetBytes(json));
        var offset = json.IndexOf("\"\\udc00", StringComparison.Ordinal);
        Assert.Equal($"alerts[0].labels.instance: an escape that is not valid UTF-16, such as a lone surrogate (byte offset {offset}).", error);

        var raw = Encoding.UTF8.GetBytes(Valid().Replace("\"instance\":\"a2\"", "\"instance\":\"a\u00e92\""));
        var at = Array.IndexOf(raw, (byte)0xC3);
        raw[at + 1] = 0x28;
        (_, error) = NotificationParser.Parse(raw);
        Assert.Equal($"alerts[1].labels.instance: invalid UTF-8 (byte offset {at}).", error);
    }

    [Fact]
    public void What_is_wrong_is_told_in_a_fixed_order_whatever_the_order_of_the_fields()
    {
        // The body is read once, front to back; the answer is the one a check of the whole body in this order gives:
        // malformed JSON, then escapes, then the notification's fields, then its alerts in order.
        var valid = Valid();
        var escaped = valid.Replace("\"receiver\":", "\"receiver\":5,\"receiver\":").Replace("\"instance\":\"a2\"", "\"instance\":\"\\udc00\"");
        (string Body, string Error)[] cases =
        [
            (valid.Replace("\"fingerprint\":\"a1\"", "\"fingerprint\":1").Replace("\"version\":\"4\"", "\"version\":\"3\""),
                "Unsupported 'version' \"3\"; only Alertmanager webhook version \"4\" is accepted."),
            (valid.Replace("\"alerts\":[", "\"alerts\":[null,").Replace("\"truncatedAlerts\":0", "\"truncatedAlerts\":-1"),
                "'truncatedAlerts' must be a whole number from 0 to 18446744073709551615 (Alertmanager's uint64)."),
            (valid.Replace("\"status\":\"resolved\"", "\"status\":\"gone\"").Replace("\"labels\":{", "\"labels\":{\"x\":[],"),
                "'alerts[0] (a1).labels.x' must be a string."),
            (valid.Replace("\"generatorURL\":", "\"x\":1,\"generatorURL\":").Replace("\"fingerprint\":\"a2\"", "\"fingerprint\":\"a2\",\"status\":\"firing\""),
                "alerts[1]: 'status' appears more than once."),
            (escaped, $"alerts[1].labels.instance: an escape that is not valid UTF-16, such as a lone surrogate (byte offset {escaped.IndexOf("\"\\udc00", StringComparison.Ordinal)})."),
            (valid.Replace("\"instance\":\"a1\"", "\"instance\":\"\\udc00\"")[..^2], $"Malformed JSON (line 1, byte {valid.Length + 2})."),
        ];
        foreach (var (body, expected) in cases)
            Assert.Equal(expected, NotificationParser.Parse(Encoding.UTF8.GetBytes(body)).Error);
    }

    [Fact]
    public void A_20000_alert_body_is_validated_in_one_extra_pass()
    {
        var alerts = Enumerable.Range(0, 20_000).Select(i => Firing($"fp{i:D5}") with
        {
            Labels = new() { ["alertname"] = "HighErrorRate", ["severity"] = "critical", ["instance"] = $"order-execution-{i}:9091", ["job"] = "order-execution" },
            Annotations = new() { ["summary"] = $"Error rate above 5% on order-execution-{i} <b>&</b>", ["description"] = "The service answers more than 5% of requests with errors." },
        }).ToArray();
        var body = Encoding.UTF8.GetBytes(Body("g-huge", alerts));
        Assert.Null(NotificationParser.Parse(body).Error); // warm up

        var clock = Stopwatch.StartNew();
        var (notification, error) = NotificationParser.Parse(body);
        var parse = clock.Elapsed;
        clock.Restart();
        using (JsonDocument.Parse(body)) { }
        var documentOnly = clock.Elapsed;

        Assert.Null(error);
        Assert.Equal(20_000, notification!.Alerts.Count);
        output.WriteLine($"{body.Length} bytes: Parse {parse.TotalMilliseconds:F0} ms, JsonDocument.Parse alone {documentOnly.TotalMilliseconds:F0} ms");
    }
}

/// <summary>The webhook payload as the serializer binds it by itself: the reference for the service's converters.</summary>
internal sealed class PlainNotification
{
    [System.Text.Json.Serialization.JsonPropertyName("alerts")] public List<PlainAlert>? Alerts { get; set; }
}

internal sealed class PlainAlert
{
    [System.Text.Json.Serialization.JsonPropertyName("status")] public string? Status { get; set; }
    [System.Text.Json.Serialization.JsonPropertyName("labels")] public Dictionary<string, string>? Labels { get; set; }
    [System.Text.Json.Serialization.JsonPropertyName("annotations")] public Dictionary<string, string>? Annotations { get; set; }
    [System.Text.Json.Serialization.JsonPropertyName("generatorURL")] public string? GeneratorUrl { get; set; }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(PlainNotification))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Skip)]
internal sealed partial class PlainJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
