using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using B25.Alerting.Webhooks;

namespace B25.Alerting.RiskManager;

/// <summary>What the outbox keeps for one emergency stop: everything needed to build the contract message.</summary>
internal sealed record EmergencyStopCommand(
    Guid CommandId,
    string AlertName,
    string Fingerprint,
    DateTimeOffset StartsAt,
    Dictionary<string, string> Scope,
    string Reason,
    Dictionary<string, string> Labels)
{
    /// <summary>Labels that say what to stop, when the alert has them.</summary>
    public static readonly string[] ScopeLabels = ["exchange", "symbol", "strategy", "account", "service"];

    public static EmergencyStopCommand For(AlertmanagerAlert alert)
    {
        var labels = alert.Labels ?? [];
        return new EmergencyStopCommand(
            CommandIdFor(alert.Fingerprint!, alert.StartsAt!.Value),
            labels.GetValueOrDefault("alertname", "alert"),
            alert.Fingerprint!,
            alert.StartsAt!.Value,
            ScopeLabels.Where(labels.ContainsKey).ToDictionary(k => k, k => labels[k]),
            alert.Annotations?.GetValueOrDefault("summary") is { Length: > 0 } summary ? summary : labels.GetValueOrDefault("alertname", "alert"),
            new Dictionary<string, string>(labels));
    }

    /// <summary>Deterministic: the same alert occurrence gives the same id on every replica, after every restart.</summary>
    public static Guid CommandIdFor(string fingerprint, DateTimeOffset startsAt)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"emergency-stop\n{fingerprint}\n{AlertKey.Format(startsAt)}"));
        var bytes = hash.AsSpan(0, 16).ToArray();
        bytes[6] = (byte)((bytes[6] & 0x0F) | 0x80); // RFC 9562 version 8 (custom), variant 10
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes, bigEndian: true);
    }
}

[JsonSerializable(typeof(EmergencyStopCommand))]
internal sealed partial class RiskManagerJsonContext : JsonSerializerContext;
