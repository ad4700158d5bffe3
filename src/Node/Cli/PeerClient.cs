using MoEMesh.Protocol;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;

namespace MoEMesh.Node.Cli;

/// <summary>A short-lived client for the CLI verbs: an identity (ephemeral unless given) and a connection pool.</summary>
internal sealed class PeerClient : IAsyncDisposable
{
    private readonly PeerConnectionPool _pool;
    private readonly bool _ownsIdentity;

    public PeerClient(bool useTls, PeerIdentity? identity = null)
    {
        _ownsIdentity = identity is null;
        Identity = identity ?? PeerIdentity.Create();
        _pool = new PeerConnectionPool(Identity, new PeerProtocolOptions { UseTls = useTls }, TimeProvider.System);
        Transport = new TcpPeerTransport(_pool, TimeProvider.System);
    }

    public PeerIdentity Identity { get; }

    public IPeerTransport Transport { get; }

    public async ValueTask DisposeAsync()
    {
        await _pool.DisposeAsync();
        if (_ownsIdentity) Identity.Dispose();
    }
}
