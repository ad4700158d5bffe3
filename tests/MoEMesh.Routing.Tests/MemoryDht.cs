using MoEMesh.Dht;
using MoEMesh.Dht.Records;

namespace MoEMesh.Routing.Tests;

/// <summary>
/// An <see cref="IDht"/> in a dictionary, for routing tests that are about what is stored, not how it
/// travels: per key and subkey the latest expiration wins; expired entries are not returned. Counts lookups.
/// </summary>
internal sealed class MemoryDht(TimeProvider time) : IDht
{
    private readonly Dictionary<string, Dictionary<string, DhtRecord>> _keys = new(StringComparer.Ordinal);

    /// <summary>Keys looked up so far.</summary>
    public int KeysLookedUp { get; private set; }

    /// <summary>When set, lookups never answer (as a DHT whose nodes all stall); they end only when cancelled.</summary>
    public bool Stalled { get; set; }

    public async Task<DhtValue?> GetAsync(string key, bool latest, CancellationToken cancellationToken) =>
        (await GetManyAsync([key], latest, cancellationToken))[key];

    public async Task<IReadOnlyDictionary<string, DhtValue?>> GetManyAsync(IReadOnlyCollection<string> keys, bool latest, CancellationToken cancellationToken)
    {
        if (Stalled) await Task.Delay(Timeout.InfiniteTimeSpan, cancellationToken);
        return keys.Distinct().ToDictionary(k => k, Get);
    }

    public async Task<DhtStoreResult> StoreAsync(DhtRecord record, CancellationToken cancellationToken) => (await StoreManyAsync([record], cancellationToken))[0];

    public Task<IReadOnlyList<DhtStoreResult>> StoreManyAsync(IReadOnlyList<DhtRecord> records, CancellationToken cancellationToken)
    {
        foreach (var r in records)
        {
            if (!_keys.TryGetValue(r.Key, out var entries)) _keys[r.Key] = entries = new Dictionary<string, DhtRecord>(StringComparer.Ordinal);
            var subkey = r.Subkey ?? "";
            if (!entries.TryGetValue(subkey, out var held) || held.Expiration < r.Expiration) entries[subkey] = r;
        }
        return Task.FromResult<IReadOnlyList<DhtStoreResult>>(records.Select(r => new DhtStoreResult(r, 1, null)).ToArray());
    }

    private DhtValue? Get(string key)
    {
        KeysLookedUp++;
        if (!_keys.TryGetValue(key, out var entries)) return null;
        var live = entries.Values.Where(r => r.Expiration > time.GetUtcNow()).OrderBy(r => r.Subkey, StringComparer.Ordinal).ToArray();
        return live.Length == 0 ? null : new DhtValue(key, live);
    }
}
