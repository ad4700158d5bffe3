namespace MoEMesh.Dht.Records;

/// <summary>
/// What a GET found under one key: either one plain record, or the entries of a dictionary, one per
/// subkey, each the latest seen across the nodes asked.
/// </summary>
public sealed record DhtValue(string Key, IReadOnlyList<DhtRecord> Records)
{
    /// <summary>Whether the key holds subkey entries rather than one plain value.</summary>
    public bool IsDictionary => Records.Count > 0 && Records[0].Subkey is not null;

    /// <summary>The plain record, or null for a dictionary.</summary>
    public DhtRecord? Plain => IsDictionary ? null : Records.FirstOrDefault();

    /// <summary>The entry under <paramref name="subkey"/>, or null.</summary>
    public DhtRecord? this[string subkey] => Records.FirstOrDefault(r => r.Subkey == subkey);

    /// <summary>The latest expiration among the records.</summary>
    public DateTimeOffset LatestExpiration => Records.Max(r => r.Expiration);
}

/// <summary>
/// Merges records for one key from several nodes with the storage rules: per subkey the latest expiration
/// wins. Between a plain value and a dictionary (different nodes answered differently), the kind that
/// carries signatures wins over one that carries none, so one hostile replica's unsigned value cannot hide
/// signed entries; otherwise the kind holding the latest expiration wins. New subkeys beyond
/// <paramref name="maxBytes"/> (what one node may hold under a key) are not taken, so hostile answers
/// cannot grow a GET without bound.
/// </summary>
internal sealed class RecordMerger(string key, long maxBytes = long.MaxValue)
{
    private readonly Dictionary<string, DhtRecord> _entries = new(StringComparer.Ordinal);
    private DhtRecord? _plain;
    private long _entryBytes;

    /// <summary>Whether any record was added.</summary>
    public bool IsEmpty => _plain is null && _entries.Count == 0;

    public void Add(DhtRecord record)
    {
        if (record.Subkey is null)
        {
            if (_plain is null || record.Expiration > _plain.Expiration) _plain = record;
            return;
        }
        long cost = Storage.RecordStore.Cost(record);
        if (_entries.TryGetValue(record.Subkey, out var held))
        {
            if (record.Expiration <= held.Expiration) return;
            _entryBytes -= Storage.RecordStore.Cost(held);
        }
        else if (_entryBytes + cost > maxBytes)
        {
            return;
        }
        _entries[record.Subkey] = record;
        _entryBytes += cost;
    }

    /// <summary>The merged value, or null when nothing was found.</summary>
    public DhtValue? ToValue()
    {
        if (IsEmpty) return null;
        if (_entries.Count == 0) return new DhtValue(key, [_plain!]);
        var entries = _entries.Values.OrderBy(r => r.Subkey, StringComparer.Ordinal).ToArray();
        if (_plain is null) return new DhtValue(key, entries);
        bool entriesSigned = entries.Any(r => r.IsSigned);
        if (entriesSigned != _plain.IsSigned) return entriesSigned ? new DhtValue(key, entries) : new DhtValue(key, [_plain]);
        return entries.Max(r => r.Expiration) >= _plain.Expiration ? new DhtValue(key, entries) : new DhtValue(key, [_plain]);
    }
}
