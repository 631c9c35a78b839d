using System.Security.Cryptography;
using System.Text;
using B25.Alerting.Webhooks;

namespace B25.Alerting.Hosting;

/// <summary>
/// The start's warm-up calls this service over HTTP (its own liveness endpoint, its own webhook) so that the first real
/// request does not pay for what a request costs the first time. Those calls carry <see cref="Header"/> with a secret
/// drawn at start, known only to this process: they do not count in the HTTP metrics nor in traces, and a webhook call
/// is journaled into <see cref="Journal"/> (the warm-up's, rolled back), not into the service's journal, and not
/// published. A request with any other value of the header is an ordinary request.
/// </summary>
internal sealed class WarmUpRequests
{
    public const string Header = "X-B25-Warm-Up";

    private readonly byte[] _secret = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)));

    public string Secret => Encoding.ASCII.GetString(_secret);

    /// <summary>Where a warm-up webhook call is journaled while the warm-up's webhook step runs; null otherwise.</summary>
    public NotificationJournal? Journal { get; set; }

    /// <summary>The request is the warm-up's own (it carries this process's secret).</summary>
    public bool Marks(HttpRequest request) =>
        request.Headers.TryGetValue(Header, out var values) && values.Count == 1 && values[0] is { } given
        && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(given), _secret);
}
