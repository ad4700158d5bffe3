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
        if (IsClient)
            return records.Select(_ => new StoreOutcome(StoreStatus.Rejected, "this node is in client mode and holds no records for others")).ToArray();
        var now = Time.GetUtcNow();
        // Signatures are checked before taking the lock, so a batch of them does not stall the node.
        var problems = records.Select(r => _validator.Check(r, now)).ToArray();
        var origin = RecordOrigin.Of(from.PeerId, from.RemoteAddress);
        lock (_gate)
            return records.Select((r, i) => problems[i] is { } problem ? new StoreOutcome(StoreStatus.Rejected, problem) : _store.Put(r, origin, now)).ToArray();
    }

    /// <inheritdoc />
    public IReadOnlyList<FindAnswer> HandleFind(DhtSender from, IReadOnlyList<FindQuery> queries)
    {
        Learn(from);
        var now = Time.GetUtcNow();
        var asker = Ids.NodeId.Of(from.PeerId);
        lock (_gate)
        {
            // Records go in query order until MaxReplyBytes; a key's records that do not fit are left out
            // whole (the asker asks again). The first key's always fit: MaxBytesPerKey <= MaxReplyBytes.
            long room = Options.MaxReplyBytes;
            return queries.Select(q =>
            {
                var nearest = _table.Nearest(q.Target, Options.BucketSize, c => c.Id != asker && !_bans.IsBanned(c.Id, now));
                var records = q.Key is null ? [] : _store.Get(q.Key, now);
                long bytes = records.Sum(RecordStore.Cost);
                if (bytes > room) return new FindAnswer(nearest, [], RecordsLeftOut: true);
                room -= bytes;
                return new FindAnswer(nearest, records);
            }).ToArray();
        }
    }

    private void Learn(DhtSender from)
    {
        if (from.AsContact is { } contact) Seen(contact);
    }
}
