using System.Net;
using System.Net.Sockets;

namespace MoEMesh.Testing;

/// <summary>Loopback ports for tests and benchmarks.</summary>
public static class LoopbackPorts
{
    /// <summary>
    /// A loopback port nothing listens on now (bound and released): a dial there is refused, as at an address
    /// announced behind a NAT. Something else may bind it later; a test that needs it free must bind it itself.
    /// </summary>
    public static int Unused()
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
