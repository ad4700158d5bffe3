using System.Net;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Dht.Storage;

/// <summary>
/// Who a stored record is charged to: the peer that stored it, and its network. PeerIds cost nothing to
/// make, addresses do, so fair shares of a full node or key are kept per network: an IPv4 /24 or an IPv6
/// /48 of the connection the store came on. Without an address (an in-process network) the peer is its
/// own network.
/// </summary>
public readonly record struct RecordOrigin(PeerId Peer, string Network)
{
    /// <summary>The origin of a store from <paramref name="peer"/> over a connection from <paramref name="address"/>.</summary>
    public static RecordOrigin Of(PeerId peer, IPAddress? address) => new(peer, address is null ? $"peer {peer}" : AddressNetwork.Of(address));
}
