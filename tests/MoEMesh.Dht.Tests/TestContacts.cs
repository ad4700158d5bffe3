using MoEMesh.Dht.Ids;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Dht.Tests;

/// <summary>Deterministic contacts for table tests: PeerIds from seeded random hashes (no keys needed).</summary>
internal static class TestContacts
{
    public static DhtContact Random(Random random) => FromId(NodeId.Random(random));

    /// <summary>A contact whose id shares exactly <paramref name="prefix"/> leading bits with <paramref name="self"/>.</summary>
    public static DhtContact WithPrefix(NodeId self, int prefix, Random random) =>
        FromId(NodeId.RandomWithPrefix(self, prefix, differAtNext: true, random));

    private static DhtContact FromId(NodeId id) => new(PeerId.FromHash(id.ToBytes()), new PeerAddress("10.0.0.1", 7000));
}
