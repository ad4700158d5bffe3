using MoEMesh.Protocol;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;

namespace MoEMesh.Node.Cli;

/// <summary>A short-lived client for the CLI verbs: an ephemeral identity and a connection pool.</summary>
internal sealed class PeerClient : IAsyncDisposable
{
    private readonly PeerConnectionPool _pool;

    public PeerClient(bool useTls, PeerIdentity? identity = null)
    {
        Identity = identity ?? PeerIdentity.Create();
        _pool = new PeerConnectionPool(Identity, new PeerProtocolOptions { UseTls = useTls }, TimeProvider.System);
        Transport = new TcpPeerTransport(_pool, TimeProvider.System);
    }

    public PeerIdentity Identity { get; }

    public IPeerTransport Transport { get; }

    public async ValueTask DisposeAsync()
    {
        await _pool.DisposeAsync();
        Identity.Dispose();
    }
}
