using System.Text;
using MoEMesh.Dht.Records;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Dht.Storage;

/// <summary>
/// A node's records. A key holds either one plain value or a dictionary of subkey entries, each subkey
/// with its own expiration (many hosts announce under one key). A later expiration wins, per subkey. A
/// key keeps its kind while it holds an unexpired entry: a plain value cannot replace a dictionary, nor
/// a dictionary entry a plain value, whatever its expiration (otherwise one unsigned value with a later
/// expiration would wipe every host's signed entry under an expert's key, and then have the hosts'
/// renewals refused). Expired entries are never returned and are purged, soonest first, in time
/// proportional to what expired.
/// <para>
/// Storage is bounded in bytes (an entry costs its key, subkey, value, key and signature bytes plus
/// <see cref="EntryOverhead"/>): per node (<see cref="DhtOptions.MaxStoredBytes"/>), per storing peer
/// (<see cref="DhtOptions.MaxBytesPerOrigin"/>, a hard limit) and per key
/// (<see cref="DhtOptions.MaxBytesPerKey"/>). When the node or a key is full, every network
/// (<see cref="RecordOrigin.Network"/>) is owed an equal share of it: a store from a network below its share
/// evicts the soonest-expiring entries of the network holding the most, one above its share is refused
/// (Full). So a flood of fresh identities from one network fills at most that network's share, and the
/// hosts of other networks keep theirs.
/// </para>
/// Not thread-safe: the owning node serialises access.
/// </summary>
internal sealed class RecordStore(DhtOptions options, RecordValidator validator)
{
    /// <summary>Bytes charged per entry beyond its own: object headers, indexes.</summary>
    public const int EntryOverhead = 128;

    private readonly Dictionary<string, Slot> _slots = new(StringComparer.Ordinal);
    private readonly SortedSet<Entry> _byExpiry = new(Entry.SoonestFirst);
    private readonly Dictionary<PeerId, long> _bytesPerPeer = [];
    private readonly Dictionary<string, Share> _networks = new(StringComparer.Ordinal);
    private long _sequence;

    /// <summary>Entries held (plain values plus subkey entries).</summary>
    public int Count => _byExpiry.Count;

    /// <summary>Bytes charged for what is held.</summary>
    public long Bytes { get; private set; }

    /// <summary>Keys held.</summary>
    public IEnumerable<string> Keys => _slots.Keys;

    /// <summary>Bytes charged to entries <paramref name="peer"/> stored.</summary>
    public long BytesFrom(PeerId peer) => _bytesPerPeer.GetValueOrDefault(peer);

    /// <summary>Bytes charged to entries stored from <paramref name="network"/>.</summary>
    public long BytesFromNetwork(string network) => _networks.TryGetValue(network, out var share) ? share.Bytes : 0;

    /// <summary>What <paramref name="record"/> costs to hold.</summary>
    public static long Cost(DhtRecord record) =>
        EntryOverhead + Encoding.UTF8.GetByteCount(record.Key) + (record.Subkey is null ? 0 : Encoding.UTF8.GetByteCount(record.Subkey))
        + record.Value.Length + record.PublicKey.Length + record.Signature.Length;

    /// <summary>Validates and stores one record (<see cref="Put"/> for records already validated).</summary>
    public StoreOutcome TryStore(DhtRecord record, RecordOrigin origin, DateTimeOffset now) =>
        validator.Check(record, now) is { } problem ? new StoreOutcome(StoreStatus.Rejected, problem) : Put(record, origin, now);

    /// <summary>Stores a record that passed validation, on behalf of <paramref name="origin"/>.</summary>
    public StoreOutcome Put(DhtRecord record, RecordOrigin origin, DateTimeOffset now)
    {
        Purge(now);
        _slots.TryGetValue(record.Key, out var slot);
        var existing = slot?.Find(record.Subkey);
        if (existing is not null)
        {
            if (record.Expiration < existing.Record.Expiration ||
                (record.Expiration == existing.Record.Expiration && !record.Value.Span.SequenceEqual(existing.Record.Value.Span)))
                return new StoreOutcome(StoreStatus.Outdated, $"holds an entry expiring {existing.Record.Expiration:O}");
            if (record.Expiration == existing.Record.Expiration)
            {
                existing.LastStored = now;
                return StoreOutcome.Stored;
            }
        }
        else if (slot is not null && slot.IsDictionary != (record.Subkey is not null))
        {
            return new StoreOutcome(StoreStatus.Rejected,
                $"the key holds a {(slot.IsDictionary ? "dictionary of subkey entries" : "plain value")} until {slot.LatestExpiration:O}; a {(slot.IsDictionary ? "plain value" : "subkey entry")} cannot replace it");
        }

        long cost = Cost(record), freed = existing?.Cost ?? 0;
        long peerBytes = BytesFrom(origin.Peer) - (existing?.Origin.Peer == origin.Peer ? freed : 0);
        if (peerBytes + cost > options.MaxBytesPerOrigin)
            return new StoreOutcome(StoreStatus.Full, $"peer {origin.Peer} has {peerBytes} bytes stored here; limit MaxBytesPerOrigin = {options.MaxBytesPerOrigin}");
        if (cost > options.MaxBytesPerKey)
            return new StoreOutcome(StoreStatus.Full, $"an entry of {cost} bytes exceeds MaxBytesPerKey = {options.MaxBytesPerKey}");

        var keyScope = new KeyScope(slot, options.MaxBytesPerKey, record.Key);
        var nodeScope = new NodeScope(this, options.MaxStoredBytes);
        if ((FairShareProblem(keyScope, origin.Network, cost, existing) ?? FairShareProblem(nodeScope, origin.Network, cost, existing)) is { } full)
            return new StoreOutcome(StoreStatus.Full, full);
        if (existing is not null) Remove(existing);
        MakeRoom(keyScope, origin.Network, cost);
        MakeRoom(nodeScope, origin.Network, cost);

        if (!_slots.TryGetValue(record.Key, out slot)) _slots[record.Key] = slot = new Slot(record.Subkey is not null);
        Add(slot, new Entry(record, origin, cost, ++_sequence) { LastStored = now });
        return StoreOutcome.Stored;
    }

    /// <summary>
    /// The records to republish (Kademlia's hourly republish, with its optimisation): those nobody has
    /// stored here for <paramref name="period"/> (when somebody has, its writer renewed it or a holder
    /// republished it to the nearest nodes, this one included) that also outlive the next period
    /// (shorter-lived records are renewed by their writers, as announcements are).
    /// </summary>
    public List<DhtRecord> Unrenewed(DateTimeOffset now, TimeSpan period) =>
        _byExpiry.Where(e => e.LastStored <= now - period && e.Record.Expiration > now + period).Select(e => e.Record).ToList();

    /// <summary>Unexpired entries under <paramref name="key"/>: one plain record, or one per subkey; empty when none.</summary>
    public IReadOnlyList<DhtRecord> Get(string key, DateTimeOffset now) =>
        _slots.TryGetValue(key, out var slot) ? slot.Entries.Where(e => e.Record.Expiration > now).Select(e => e.Record).ToArray() : [];

    /// <summary>Drops every expired entry, soonest first; costs what expired, not what is held.</summary>
    public void Purge(DateTimeOffset now)
    {
        while (_byExpiry.Count > 0 && _byExpiry.Min!.Record.Expiration <= now) Remove(_byExpiry.Min);
    }

    /// <summary>
    /// Why a store of <paramref name="cost"/> bytes from <paramref name="network"/> cannot fit in
    /// <paramref name="scope"/> even after evicting networks above their share, or null when it can.
    /// </summary>
    private static string? FairShareProblem(IScope scope, string network, long cost, Entry? replaced)
    {
        long freed = replaced is not null && scope.Holds(replaced) ? replaced.Cost : 0;
        if (scope.Bytes - freed + cost <= scope.Budget) return null;
        var shares = scope.BytesPerNetwork();
        if (replaced is not null && freed > 0) shares[replaced.Origin.Network] -= freed;
        long mine = shares.GetValueOrDefault(network);
        int networks = shares.Count(s => s.Value > 0) + (mine > 0 ? 0 : 1);
        long share = scope.Budget / networks;
        return mine + cost <= share ? null
            : $"{scope.Name} is full ({scope.Bytes} of {scope.Budget} bytes) and network {network} already holds {mine} bytes of it, its share of {networks} networks being {share}";
    }

    /// <summary>Evicts the soonest-expiring entries of the networks holding the most until <paramref name="cost"/> more bytes fit.</summary>
    private void MakeRoom(IScope scope, string network, long cost)
    {
        while (scope.Bytes + cost > scope.Budget)
        {
            var largest = scope.BytesPerNetwork().Where(s => s.Key != network).MaxBy(s => s.Value);
            if (largest.Value <= 0) throw new InvalidOperationException($"nothing left to evict from {scope.Name}");
            Remove(scope.SoonestExpiringOf(largest.Key));
        }
    }

    private void Add(Slot slot, Entry entry)
    {
        slot.Put(entry);
        _byExpiry.Add(entry);
        Bytes += entry.Cost;
        _bytesPerPeer[entry.Origin.Peer] = BytesFrom(entry.Origin.Peer) + entry.Cost;
        if (!_networks.TryGetValue(entry.Origin.Network, out var share)) _networks[entry.Origin.Network] = share = new Share();
        share.Bytes += entry.Cost;
        share.Entries.Add(entry);
    }

    private void Remove(Entry entry)
    {
        var slot = _slots[entry.Record.Key];
        slot.Remove(entry);
        if (slot.IsEmpty) _slots.Remove(entry.Record.Key);
        _byExpiry.Remove(entry);
        Bytes -= entry.Cost;
        long left = BytesFrom(entry.Origin.Peer) - entry.Cost;
        if (left <= 0) _bytesPerPeer.Remove(entry.Origin.Peer);
        else _bytesPerPeer[entry.Origin.Peer] = left;
        var share = _networks[entry.Origin.Network];
        share.Bytes -= entry.Cost;
        share.Entries.Remove(entry);
        if (share.Entries.Count == 0) _networks.Remove(entry.Origin.Network);
    }

    /// <summary>Held record, who it is charged to and what it costs; ordered by expiration, then arrival.</summary>
    private sealed class Entry(DhtRecord record, RecordOrigin origin, long cost, long sequence)
    {
        public DhtRecord Record { get; } = record;

        public RecordOrigin Origin { get; } = origin;

        public long Cost { get; } = cost;

        public long Sequence { get; } = sequence;

        /// <summary>When a store of this entry last arrived (first, or the same entry again from a holder's republish).</summary>
        public DateTimeOffset LastStored { get; set; }

        public static readonly IComparer<Entry> SoonestFirst = Comparer<Entry>.Create((a, b) =>
        {
            int c = a.Record.Expiration.CompareTo(b.Record.Expiration);
            return c != 0 ? c : a.Sequence.CompareTo(b.Sequence);
        });
    }

    /// <summary>What one network has stored on this node.</summary>
    private sealed class Share
    {
        public long Bytes;
        public readonly SortedSet<Entry> Entries = new(Entry.SoonestFirst);
    }

    /// <summary>A budget that networks share fairly: the whole node, or one key.</summary>
    private interface IScope
    {
        string Name { get; }
        long Budget { get; }
        long Bytes { get; }
        bool Holds(Entry entry);
        Dictionary<string, long> BytesPerNetwork();
        Entry SoonestExpiringOf(string network);
    }

    private sealed class NodeScope(RecordStore store, long budget) : IScope
    {
        public string Name => "this node's storage (MaxStoredBytes)";
        public long Budget => budget;
        public long Bytes => store.Bytes;
        public bool Holds(Entry entry) => true;
        public Dictionary<string, long> BytesPerNetwork() => store._networks.ToDictionary(n => n.Key, n => n.Value.Bytes, StringComparer.Ordinal);
        public Entry SoonestExpiringOf(string network) => store._networks[network].Entries.Min!;
    }

    /// <summary>One key's entries (a key holds at most MaxBytesPerKey / small entries, so scanning them is cheap).</summary>
    private sealed class KeyScope(Slot? slot, long budget, string key) : IScope
    {
        public string Name => $"key '{key}' (MaxBytesPerKey)";
        public long Budget => budget;
        public long Bytes => slot?.Bytes ?? 0;
        public bool Holds(Entry entry) => entry.Record.Key == key;
        public Dictionary<string, long> BytesPerNetwork() =>
            (slot?.Entries ?? []).GroupBy(e => e.Origin.Network, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Sum(e => e.Cost), StringComparer.Ordinal);
        public Entry SoonestExpiringOf(string network) => slot!.Entries.Where(e => e.Origin.Network == network).Min(Entry.SoonestFirst)!;
    }

    /// <summary>What one key holds: a plain entry (subkey null) or entries by subkey.</summary>
    private sealed class Slot(bool isDictionary)
    {
        private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

        public bool IsDictionary { get; } = isDictionary;

        public bool IsEmpty => _entries.Count == 0;

        public long Bytes { get; private set; }

        public IEnumerable<Entry> Entries => _entries.Values;

        public DateTimeOffset LatestExpiration => _entries.Values.Max(e => e.Record.Expiration);

        public Entry? Find(string? subkey) =>
            IsDictionary == (subkey is not null) && _entries.TryGetValue(subkey ?? "", out var e) ? e : null;

        public void Put(Entry entry)
        {
            _entries[entry.Record.Subkey ?? ""] = entry;
            Bytes += entry.Cost;
        }

        public void Remove(Entry entry)
        {
            if (_entries.Remove(entry.Record.Subkey ?? "")) Bytes -= entry.Cost;
        }
    }
}
