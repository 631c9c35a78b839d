using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace B25.Alerting.Hosting;

/// <summary>
/// Where the service listens. The standard ASP.NET Core settings decide (<c>ASPNETCORE_URLS</c>, <c>--urls</c>,
/// <c>ASPNETCORE_HTTP_PORTS</c>, <c>Kestrel:Endpoints</c>); only when none is given does the service listen on
/// <see cref="Default"/>, a loopback address, so a developer box exposes nothing by accident.
/// </summary>
internal static class ListenAddresses
{
    public const string Default = "http://127.0.0.1:8080";

    public static bool IsConfigured(IConfiguration configuration) =>
        !string.IsNullOrWhiteSpace(configuration["urls"])
        || !string.IsNullOrWhiteSpace(configuration["http_ports"])
        || !string.IsNullOrWhiteSpace(configuration["https_ports"])
        || configuration.GetSection("Kestrel:Endpoints").GetChildren().Any();

    public static void UseDefaultUnlessConfigured(WebApplicationBuilder builder)
    {
        if (!IsConfigured(builder.Configuration)) builder.WebHost.UseUrls(Default);
    }

    /// <summary>
    /// The first configured address another process already listens on, or null. Tried by binding (and
    /// releasing) each address before storage is touched or a worker starts: a second instance must change
    /// nothing. Kestrel binds for real a moment later; the check does not replace its own error.
    /// </summary>
    public static string? FindInUse(IConfiguration configuration)
    {
        foreach (var (url, endpoint) in Endpoints(configuration))
        {
            try
            {
                using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                if (endpoint.AddressFamily == AddressFamily.InterNetworkV6) socket.DualMode = endpoint.Address.Equals(IPAddress.IPv6Any);
                socket.Bind(endpoint);
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                return url;
            }
            catch (SocketException)
            {
                // Not ours to judge (an address this host does not have, no IPv6): Kestrel says what it is.
            }
        }
        return null;
    }

    /// <summary>The addresses Kestrel will bind, as far as they can be known before it starts.</summary>
    internal static IEnumerable<(string Url, IPEndPoint Endpoint)> Endpoints(IConfiguration configuration)
    {
        var urls = new List<string>();
        foreach (var child in configuration.GetSection("Kestrel:Endpoints").GetChildren())
            if (child["Url"] is { Length: > 0 } url) urls.Add(url);
        if (urls.Count == 0)
        {
            if (configuration["urls"] is { Length: > 0 } configured)
                urls.AddRange(configured.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            else
            {
                foreach (var port in (configuration["http_ports"] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    urls.Add($"http://*:{port}");
                foreach (var port in (configuration["https_ports"] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    urls.Add($"https://*:{port}");
            }
        }
        if (urls.Count == 0) urls.Add(Default);
        foreach (var url in urls)
            if (Parse(url) is { } endpoint) yield return (url, endpoint);
    }

    private static IPEndPoint? Parse(string url)
    {
        var scheme = url.IndexOf("://", StringComparison.Ordinal);
        if (scheme < 0) return null;
        var rest = url[(scheme + 3)..];
        var slash = rest.IndexOf('/');
        if (slash >= 0) rest = rest[..slash];
        var colon = rest.LastIndexOf(':');
        if (colon < 0 || rest.EndsWith(']')) return null; // no port: Kestrel's default, not checked
        var host = rest[..colon].Trim('[', ']');
        if (!int.TryParse(rest[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is <= 0 or > 65535)
            return null;
        var address = host switch
        {
            "localhost" => IPAddress.Loopback,
            "*" or "+" or "" => IPAddress.IPv6Any,
            _ when IPAddress.TryParse(host, out var ip) => ip,
            _ => IPAddress.IPv6Any, // a host name: Kestrel listens on every address
        };
        return new IPEndPoint(address, port);
    }
}
