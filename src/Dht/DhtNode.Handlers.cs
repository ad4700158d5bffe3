using MoEMesh.Dht.Records;
using MoEMesh.Dht.Rpc;
using MoEMesh.Dht.Storage;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Dht;

/// <summary>The inbound RPCs. Every request teaches us its sender (unless the sender is in client mode).</summary>
public sealed partial class DhtNode
{
    /// <inheritdoc />
    public PeerId HandlePing(DhtSender from)
    {
        Learn(from);
        return PeerId;
    }

    /// <inheritdoc />
    public IReadOnlyList<StoreOutcome> HandleStore(DhtSender from, IReadOnlyList<DhtRecord> records)
    {
        Learn(from);
        if (Options.ClientMode)
            return records.Select(_ => new StoreOutcome(StoreStatus.Rejected, "this node is in client mode and holds no records for others")).ToArray();
        var now = Time.GetUtcNow();
        lock (_gate) return records.Select(r => _store.TryStore(r, from.PeerId, now)).ToArray();
    }

    /// <inheritdoc />
    public IReadOnlyList<FindAnswer> HandleFind(DhtSender from, IReadOnlyList<FindQuery> queries)
    {
        Learn(from);
        var now = Time.GetUtcNow();
        var asker = Ids.NodeId.Of(from.PeerId);
        lock (_gate)
        {
            return queries.Select(q => new FindAnswer(
                _table.Nearest(q.Target, Options.BucketSize, c => c.Id != asker && !_bans.IsBanned(c.Id, now)),
                q.Key is null ? [] : _store.Get(q.Key, now))).ToArray();
        }
    }

    private void Learn(DhtSender from)
    {
        if (from.AsContact is { } contact) Seen(contact);
    }
}
