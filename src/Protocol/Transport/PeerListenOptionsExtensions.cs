using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace MoEMesh.Protocol.Transport;

/// <summary>Plugs the peer protocol into a Kestrel endpoint.</summary>
public static class PeerListenOptionsExtensions
{
    /// <summary>Serves the peer protocol on this endpoint (instead of HTTP).</summary>
    public static ListenOptions UsePeerProtocol(this ListenOptions listenOptions, PeerServer server)
    {
        listenOptions.Run(server.HandleConnectionAsync);
        return listenOptions;
    }
}
