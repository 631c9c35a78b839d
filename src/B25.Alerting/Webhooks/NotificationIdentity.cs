using System.Security.Cryptography;
using System.Text;

namespace B25.Alerting.Webhooks;

/// <summary>
/// Identities derived from content, so every Alertmanager replica and every retry of the same
/// notification maps to the same keys.
/// </summary>
internal static class NotificationIdentity
{
    /// <summary>The alert group: receiver + groupKey.</summary>
    public static string GroupId(string receiver, string groupKey) => Hash($"{receiver}\n{groupKey}");

    /// <summary>
    /// The notification: its group and the (fingerprint, startsAt, status) of every alert. HA peers
    /// differ in externalURL and may differ in annotation values or endsAt; none of that changes what
    /// the incident state machine does with the notification, so none of it is part of the identity.
    /// </summary>
    public static string NotificationId(NotificationEnvelope notification)
    {
        var builder = new StringBuilder();
        builder.Append(notification.Receiver).Append('\n').Append(notification.GroupKey).Append('\n');
        foreach (var alert in notification.Alerts
                     .Select(a => $"{a.Fingerprint}|{AlertKey.Format(a.StartsAt)}|{a.Status}")
                     .Order(StringComparer.Ordinal))
        {
            builder.Append(alert).Append('\n');
        }
        return Hash(builder.ToString());
    }

    public static Guid PartitionKey(string groupId) => new(Convert.FromHexString(groupId.AsSpan(0, 32)));

    private static string Hash(string value) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(value)));
}

/// <summary>One alert occurrence: (fingerprint, startsAt).</summary>
internal readonly record struct AlertKey(string Fingerprint, string StartsAt)
{
    public static AlertKey Of(AlertmanagerAlert alert) => new(alert.Fingerprint!, Format(alert.StartsAt!.Value));

    /// <summary>Normalised to UTC with full precision, so "…12:00:00Z" and "…12:00:00.000Z" are the same occurrence.</summary>
    public static string Format(DateTimeOffset startsAt) =>
        startsAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", System.Globalization.CultureInfo.InvariantCulture);
}
