using System.Buffers;
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
        // Hashed piece by piece, the same bytes as the whole text: a storm's 20,000 alerts would make that text megabytes
        // long, and its UTF-8 copy again, both on the large-object heap.
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Append(hash, notification.Receiver);
        Append(hash, "\n");
        Append(hash, notification.GroupKey);
        Append(hash, "\n");
        foreach (var alert in notification.Alerts
                     .Select(a => $"{a.Fingerprint}|{AlertKey.Format(a.StartsAt)}|{a.Status}")
                     .Order(StringComparer.Ordinal))
        {
            Append(hash, alert);
            Append(hash, "\n");
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static void Append(IncrementalHash hash, string text)
    {
        var rented = text.Length > 128 ? ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetMaxByteCount(text.Length)) : null;
        Span<byte> buffer = rented ?? stackalloc byte[Encoding.UTF8.GetMaxByteCount(128)];
        hash.AppendData(buffer[..Encoding.UTF8.GetBytes(text, buffer)]);
        if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
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
