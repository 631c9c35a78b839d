using System.Net;
using System.Net.Sockets;

namespace B25.EndToEnd.Tests.Stack;

internal static class FreePort
{
    /// <summary>A loopback port that was free a moment ago (the OS hands ephemeral ports out in turn, so reuse is unlikely).</summary>
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
