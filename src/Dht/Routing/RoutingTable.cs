using MoEMesh.Dht.Ids;

namespace MoEMesh.Dht.Routing;

/// <summary>
/// Kademlia's routing table. It starts as one bucket covering every id; when the bucket that holds our
/// own id is full, it splits in two at its next bit. Only that bucket ever splits, so the buckets are
/// exactly: for each depth d below the deepest, the ids whose first differing bit from ours is bit d,
/// plus our own bucket at the deepest level. Buckets are therefore indexed by common prefix length.
/// A full bucket that is not ours keeps newcomers in its replacement cache and asks for its
/// least-recently-seen contact to be pinged: evicted if it fails, kept (and moved to the tail) if it answers.
/// Not thread-safe: the owning node serialises access.
/// </summary>
internal sealed class RoutingTable
{
    private readonly List<KBucket> _buckets;
    private readonly int _k;

    public RoutingTable(NodeId self, int bucketSize, DateTimeOffset now)
    {
        Self = self;
        _k = bucketSize;
        _buckets = [new KBucket(bucketSize, now)];
    }

    /// <summary>Our own id.</summary>
    public NodeId Self { get; }

    /// <summary>Contacts in all buckets (replacements not counted).</summary>
    public int Count => _buckets.Sum(b => b.Contacts.Count);

    /// <summary>Number of buckets.</summary>
    public int BucketCount => _buckets.Count;

    /// <summary>The buckets by common prefix length with our id (the last one holds our own id).</summary>
    public IReadOnlyList<KBucket> Buckets => _buckets;

    /// <summary>Every contact.</summary>
    public IEnumerable<DhtContact> Contacts => _buckets.SelectMany(b => b.Contacts);

    /// <summary>The contact with <paramref name="id"/>, if present.</summary>
    public DhtContact? Find(NodeId id)
    {
        var bucket = BucketFor(id);
        int at = bucket.IndexOf(id);
        return at < 0 ? null : bucket.Contacts[at];
    }

    /// <summary>
    /// Adds or refreshes a contact that was just seen alive. Returns whether it is new to the table, and
    /// the contact to ping before eviction when its bucket is full (null when none is needed).
    /// </summary>
    public (bool Added, DhtContact? PingBeforeEvict) Add(DhtContact contact)
    {
        if (contact.Id == Self) return (false, null);
        while (true)
        {
            int index = IndexFor(contact.Id);
            var bucket = _buckets[index];
            if (bucket.TryTouch(contact)) return (false, null);
            if (!bucket.IsFull)
            {
                bucket.Append(contact);
                return (true, null);
            }
            if (index == _buckets.Count - 1 && index < NodeId.Bits - 1)
            {
                Split();
                continue;
            }
            bucket.AddReplacement(contact);
            if (bucket.PendingPing is not null) return (false, null);
            var head = bucket.Contacts[0];
            bucket.PendingPing = head.Id;
            return (false, head);
        }
    }

    /// <summary>The pinged head answered: it stays, as most recently seen.</summary>
    public void PingAnswered(DhtContact head)
    {
        var bucket = BucketFor(head.Id);
        if (bucket.PendingPing == head.Id) bucket.PendingPing = null;
        bucket.TryTouch(head);
    }

    /// <summary>Removes a contact (it failed); a replacement takes its place.</summary>
    public bool Remove(NodeId id) => BucketFor(id).Remove(id);

    /// <summary>Up to <paramref name="count"/> contacts nearest to <paramref name="target"/>, nearest first.</summary>
    public List<DhtContact> Nearest(NodeId target, int count, Func<DhtContact, bool>? include = null)
    {
        var all = new List<DhtContact>();
        foreach (var bucket in _buckets)
            foreach (var c in bucket.Contacts)
                if (include is null || include(c)) all.Add(c);
        all.Sort((a, b) => a.Id.DistanceTo(target).CompareTo(b.Id.DistanceTo(target)));
        if (all.Count > count) all.RemoveRange(count, all.Count - count);
        return all;
    }

    /// <summary>Records that a lookup for <paramref name="target"/> went through its bucket.</summary>
    public void MarkLookup(NodeId target, DateTimeOffset now) => BucketFor(target).LastLookup = now;

    /// <summary>Random ids, one in each bucket that has not seen a lookup for <paramref name="period"/>.</summary>
    public List<NodeId> StaleBucketTargets(DateTimeOffset now, TimeSpan period, Random random)
    {
        var targets = new List<NodeId>();
        for (int i = 0; i < _buckets.Count; i++)
        {
            if (now - _buckets[i].LastLookup < period) continue;
            bool own = i == _buckets.Count - 1;
            targets.Add(NodeId.RandomWithPrefix(Self, i, differAtNext: !own, random));
        }
        return targets;
    }

    private int IndexFor(NodeId id) => Math.Min(Self.CommonPrefixLength(id), _buckets.Count - 1);

    private KBucket BucketFor(NodeId id) => _buckets[IndexFor(id)];

    /// <summary>Our bucket at depth d becomes a bucket for ids differing at bit d, and our bucket at d + 1.</summary>
    private void Split()
    {
        var own = _buckets[^1];
        var (contacts, replacements) = own.Drain();
        _buckets.Add(new KBucket(_k, own.LastLookup));
        foreach (var c in contacts) _buckets[IndexFor(c.Id)].Append(c);
        foreach (var c in replacements)
        {
            var bucket = _buckets[IndexFor(c.Id)];
            if (!bucket.IsFull) bucket.Append(c);
            else bucket.AddReplacement(c);
        }
    }
}
