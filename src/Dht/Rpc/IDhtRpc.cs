using MoEMesh.Dht.Ids;
using MoEMesh.Dht.Records;
using MoEMesh.Dht.Storage;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;

namespace MoEMesh.Dht.Rpc;

/// <summary>
/// The only way the Kademlia core reaches the network (outbound). Adapters: <see cref="Transport.DhtRpcClient"/>
/// over the peer transport, and <see cref="Simulation.SimulatedNetwork"/> in one process. Every call is
/// batched over many keys and ends by its <c>deadline</c> at the latest.
/// </summary>
public interface IDhtRpc
{
    /// <summary>Checks a node is alive and learns its PeerId.</summary>
    Task<DhtRpcResult<PeerId>> PingAsync(DhtSender from, PeerEndpoint target, DateTimeOffset deadline, CancellationToken cancellationToken);

    /// <summary>Asks a node to store records; one outcome per record, in order.</summary>
    Task<DhtRpcResult<IReadOnlyList<StoreOutcome>>> StoreAsync(DhtSender from, DhtContact target, IReadOnlyList<DhtRecord> records, DateTimeOffset deadline, CancellationToken cancellationToken);

    /// <summary>Asks a node for its nearest contacts and held records; one answer per query, in order.</summary>
    Task<DhtRpcResult<IReadOnlyList<FindAnswer>>> FindAsync(DhtSender from, DhtContact target, IReadOnlyList<FindQuery> queries, DateTimeOffset deadline, CancellationToken cancellationToken);
}

/// <summary>The inbound side of the DHT RPCs, implemented by <see cref="DhtNode"/>; adapters call it.</summary>
public interface IDhtRpcHandler
{
    /// <summary>Answers a ping with this node's PeerId.</summary>
    PeerId HandlePing(DhtSender from);

    /// <summary>Stores what it validly can; one outcome per record.</summary>
    IReadOnlyList<StoreOutcome> HandleStore(DhtSender from, IReadOnlyList<DhtRecord> records);

    /// <summary>Nearest contacts and held records per query.</summary>
    IReadOnlyList<FindAnswer> HandleFind(DhtSender from, IReadOnlyList<FindQuery> queries);
}
