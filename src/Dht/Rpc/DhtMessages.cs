using MoEMesh.Dht.Ids;
using MoEMesh.Dht.Records;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Dht.Rpc;

/// <summary>
/// Who sends a request: its PeerId (authenticated by the transport), where it listens, and whether it
/// is a client-mode node that must not be added to routing tables.
/// </summary>
public sealed record DhtSender(PeerId PeerId, PeerAddress? Address, bool ClientMode)
{
    /// <summary>The IP address the request came from, when the transport knows it (what it stores is charged to its network).</summary>
    public System.Net.IPAddress? RemoteAddress { get; init; }

    /// <summary>The sender as a routing-table contact, or null for client-mode nodes and nodes without a dialable address.</summary>
    public DhtContact? AsContact => ClientMode || Address is not { IsDialable: true } address ? null : new DhtContact(PeerId, address);
}

/// <summary>One question in a find RPC: the nodes nearest to <paramref name="Target"/>, and the value of <paramref name="Key"/> when set.</summary>
public readonly record struct FindQuery(NodeId Target, string? Key)
{
    /// <summary>A query for a key's value and nearest nodes.</summary>
    public static FindQuery ForKey(string key) => new(NodeId.ForKey(key), key);
}

/// <summary>
/// The answer to one <see cref="FindQuery"/>: nearest known nodes (never the asker) and the records held;
/// <paramref name="RecordsLeftOut"/> when the key's records did not fit in the answer (ask for it again).
/// </summary>
public sealed record FindAnswer(IReadOnlyList<DhtContact> Nearest, IReadOnlyList<DhtRecord> Records, bool RecordsLeftOut = false);
