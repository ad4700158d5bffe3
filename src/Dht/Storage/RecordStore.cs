using MoEMesh.Dht.Records;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Dht.Storage;

/// <summary>
/// A node's records. A key holds either one plain value or a dictionary of subkey entries, each subkey
/// with its own expiration (many hosts announce under one key). A later expiration wins, per subkey. A
/// key keeps its kind while it holds an unexpired entry: a plain value cannot replace a dictionary, nor
/// a dictionary entry a plain value, whatever its expiration (otherwise one unsigned value with a later
/// expiration would wipe every host's signed entry under an expert's key, and then have the hosts'
/// renewals refused). Expired entries are never returned and are purged. The number of entries is bounded in
/// total and per origin (the peer that stored them), so no peer can fill a node's memory.
/// Not thread-safe: the owning node serialises access.
/// </summary>
internal sealed class RecordStore(DhtOptions options, RecordValidator validator)
{
    private readonly Dictionary<string, Slot> _slots = new(StringComparer.Ordinal);
    private readonly Dictionary<PeerId, int> _perOrigin = [];

    /// <summary>Entries held (plain values plus subkey entries), expired ones included until purged.</summary>
    public int Count { get; private set; }

    /// <summary>Keys held.</summary>
    public IEnumerable<string> Keys => _slots.Keys;

    /// <summary>Entries stored by <paramref name="origin"/>.</summary>
    public int CountFrom(PeerId origin) => _perOrigin.GetValueOrDefault(origin);

    /// <summary>Validates and stores one record on behalf of <paramref name="origin"/>.</summary>
    public StoreOutcome TryStore(DhtRecord record, PeerId origin, DateTimeOffset now)
    {
        if (validator.Check(record, now) is { } problem) return new StoreOutcome(StoreStatus.Rejected, problem);
        _slots.TryGetValue(record.Key, out var slot);
        var existing = slot?.Find(record.Subkey, now);
        if (existing is not null)
        {
            if (record.Expiration < existing.Record.Expiration ||
                (record.Expiration == existing.Record.Expiration && !record.Value.Span.SequenceEqual(existing.Record.Value.Span)))
                return new StoreOutcome(StoreStatus.Outdated, $"holds an entry expiring {existing.Record.Expiration:O}");
            if (record.Expiration == existing.Record.Expiration) return StoreOutcome.Stored;
        }
        else if (slot is not null && slot.IsDictionary != (record.Subkey is not null) && slot.LatestExpiration(now) is { } latest)
        {
            return new StoreOutcome(StoreStatus.Rejected,
                $"the key holds a {(slot.IsDictionary ? "dictionary of subkey entries" : "plain value")} until {latest:O}; a {(slot.IsDictionary ? "plain value" : "subkey entry")} cannot replace it");
        }
        if (existing is null && Count >= options.MaxRecords) Purge(now);
        if (existing is null && Count >= options.MaxRecords)
            return new StoreOutcome(StoreStatus.Full, $"this node holds {Count} records; limit MaxRecords = {options.MaxRecords}");
        if ((existing is null || existing.Origin != origin) && CountFrom(origin) >= options.MaxRecordsPerOrigin)
            return new StoreOutcome(StoreStatus.Full, $"peer {origin} already has {CountFrom(origin)} records here; limit MaxRecordsPerOrigin = {options.MaxRecordsPerOrigin}");

        if (slot is null || slot.IsDictionary != (record.Subkey is not null))
        {
            if (slot is not null) RemoveSlot(record.Key, slot);
            _slots[record.Key] = slot = new Slot(record.Subkey is not null);
        }
        var replaced = slot.Put(new Entry(record, origin));
        if (replaced is not null) Forget(replaced.Origin);
        Remember(origin);
        return StoreOutcome.Stored;
    }

    /// <summary>Unexpired entries under <paramref name="key"/>: one plain record, or one per subkey; empty when none.</summary>
    public IReadOnlyList<DhtRecord> Get(string key, DateTimeOffset now) =>
        _slots.TryGetValue(key, out var slot) ? slot.Entries.Where(e => e.Record.Expiration > now).Select(e => e.Record).ToArray() : [];

    /// <summary>Drops every expired entry.</summary>
    public void Purge(DateTimeOffset now)
    {
        List<string>? emptied = null;
        foreach (var (key, slot) in _slots)
        {
            foreach (var entry in slot.RemoveExpired(now)) Forget(entry.Origin);
            if (slot.IsEmpty) (emptied ??= []).Add(key);
        }
        if (emptied is not null)
            foreach (var key in emptied) _slots.Remove(key);
    }

    private void RemoveSlot(string key, Slot slot)
    {
        foreach (var entry in slot.Entries) Forget(entry.Origin);
        _slots.Remove(key);
    }

    private void Remember(PeerId origin)
    {
        Count++;
        _perOrigin[origin] = CountFrom(origin) + 1;
    }

    private void Forget(PeerId origin)
    {
        Count--;
        int left = CountFrom(origin) - 1;
        if (left <= 0) _perOrigin.Remove(origin);
        else _perOrigin[origin] = left;
    }

    private sealed record Entry(DhtRecord Record, PeerId Origin);

    /// <summary>What one key holds: a plain entry (subkey null) or entries by subkey.</summary>
    private sealed class Slot(bool isDictionary)
    {
        private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

        public bool IsDictionary { get; } = isDictionary;

        public bool IsEmpty => _entries.Count == 0;

        public IEnumerable<Entry> Entries => _entries.Values;

        public Entry? Find(string? subkey, DateTimeOffset now) =>
            IsDictionary == (subkey is not null) && _entries.TryGetValue(subkey ?? "", out var e) && e.Record.Expiration > now ? e : null;

        public DateTimeOffset? LatestExpiration(DateTimeOffset now)
        {
            DateTimeOffset? latest = null;
            foreach (var e in _entries.Values)
                if (e.Record.Expiration > now && (latest is null || e.Record.Expiration > latest)) latest = e.Record.Expiration;
            return latest;
        }

        /// <summary>Puts an entry; returns the one it replaced.</summary>
        public Entry? Put(Entry entry)
        {
            var subkey = entry.Record.Subkey ?? "";
            _entries.TryGetValue(subkey, out var replaced);
            _entries[subkey] = entry;
            return replaced;
        }

        public List<Entry> RemoveExpired(DateTimeOffset now)
        {
            var expired = _entries.Where(e => e.Value.Record.Expiration <= now).ToList();
            foreach (var e in expired) _entries.Remove(e.Key);
            return expired.Select(e => e.Value).ToList();
        }
    }
}
