using MoEMesh.Dht.Ids;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Dht;

/// <summary>A snapshot of a node's view of the DHT: its routing table bucket by bucket, and the peers it bans now.</summary>
public sealed record DhtHealth(IReadOnlyList<DhtBucket> Buckets, IReadOnlyList<DhtBannedPeer> Banned)
{
    /// <summary>Contacts in all buckets.</summary>
    public int Contacts => Buckets.Sum(b => b.Contacts.Count);
}

/// <summary>
/// One k-bucket: the contacts whose id shares <paramref name="Depth"/> leading bits with ours (the deepest
/// bucket holds our own id's neighbourhood), least recently seen first, and how many wait as replacements.
/// </summary>
public sealed record DhtBucket(int Depth, IReadOnlyList<DhtContact> Contacts, int Replacements);

/// <summary>A peer banned after consecutive failures (its PeerId when the node knew it), until when.</summary>
public sealed record DhtBannedPeer(NodeId Id, PeerId? PeerId, int Failures, DateTimeOffset Until);
