using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;

namespace MoEMesh.Dht.Ids;

/// <summary>A node as the DHT knows it: its PeerId (and so its <see cref="NodeId"/>) and where it listens.</summary>
public sealed record DhtContact(PeerId PeerId, PeerAddress Address)
{
    /// <summary>The Kademlia id.</summary>
    public NodeId Id { get; } = NodeId.Of(PeerId);

    /// <summary>Where to call it; the handshake checks the PeerId.</summary>
    public PeerEndpoint Endpoint => new(Address, PeerId);

    /// <inheritdoc />
    public override string ToString() => $"{PeerId}@{Address}";
}
