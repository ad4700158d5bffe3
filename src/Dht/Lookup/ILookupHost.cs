using MoEMesh.Dht.Ids;
using MoEMesh.Dht.Records;
using MoEMesh.Dht.Rpc;

namespace MoEMesh.Dht.Lookup;

/// <summary>What an <see cref="IterativeLookup"/> needs from its node.</summary>
internal interface ILookupHost
{
    NodeId Self { get; }

    DhtOptions Options { get; }

    TimeProvider Time { get; }

    /// <summary>The contacts a lookup for <paramref name="target"/> starts from.</summary>
    List<DhtContact> Seeds(NodeId target);

    /// <summary>Whether a peer is banned after failures (skipped by lookups).</summary>
    bool IsBanned(NodeId id);

    /// <summary>A find RPC; the host updates its routing table and bans from the outcome.</summary>
    Task<DhtRpcResult<IReadOnlyList<FindAnswer>>> FindAsync(DhtContact target, IReadOnlyList<FindQuery> queries, DateTimeOffset deadline, CancellationToken cancellationToken);

    /// <summary>Whether a record from the network may be believed.</summary>
    bool IsValid(DhtRecord record, DateTimeOffset now);

    /// <summary>Takes over a request the finished lookup no longer waits for, so it is tracked until it ends.</summary>
    void Abandon(Task straggler);
}
