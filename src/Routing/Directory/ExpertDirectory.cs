using Google.Protobuf;
using MoEMesh.Dht;
using MoEMesh.Dht.Records;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Settings;

namespace MoEMesh.Routing.Directory;

/// <summary>
/// Experts in the DHT (the rules every node enforces are in <see cref="KeySchema"/>): <c>expert:&lt;uid&gt;</c>
/// holds one entry per host, under the subkey of the host's PeerId, whose value is an
/// <see cref="ExpertRecord"/> signed by that host (so only the host can announce or renew itself). Several
/// hosts under one uid are replicas. For beam search, <c>prefix:&lt;uid prefix&gt;</c> holds, under the subkey
/// <c>&lt;next coordinate&gt;:&lt;host PeerId&gt;</c>, the uid the host serves below it, signed by that host, with
/// the announcement's expiration: nobody can overwrite or hide another host's way to its expert.
/// </summary>
public sealed class ExpertDirectory(IDht dht, TimeProvider? time = null, ExpertDirectoryOptions? options = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly ExpertDirectoryOptions _options = SettingsValidation.Valid(options ?? new ExpertDirectoryOptions());
    private readonly Dictionary<ExpertPrefix, (ExpertSuccessors Value, DateTimeOffset Until)> _successors = [];
    private readonly Dictionary<ExpertUid, (IReadOnlyList<ExpertHostInfo> Value, DateTimeOffset Until)> _hosts = [];

    /// <summary>How expert keys start.</summary>
    public const string ExpertKeyPrefix = "expert:";

    /// <summary>How prefix keys start.</summary>
    public const string PrefixKeyPrefix = "prefix:";

    /// <summary>The DHT key of an expert.</summary>
    public static string KeyOf(ExpertUid uid) => ExpertKeyPrefix + uid.Value;

    /// <summary>The DHT key of a prefix's successors.</summary>
    public static string KeyOf(ExpertPrefix prefix) => PrefixKeyPrefix + prefix.Value;

    /// <summary>
    /// Announces experts hosted by <paramref name="host"/> until <paramref name="expiration"/>, with the prefix
    /// entries beam search walks; one result per expert (the prefix entries' results are not reported).
    /// </summary>
    public async Task<IReadOnlyList<DhtStoreResult>> DeclareAsync(PeerIdentity host, IReadOnlyList<(ExpertUid Uid, ExpertRecord Record)> experts, DateTimeOffset expiration, CancellationToken cancellationToken)
    {
        var prefixes = experts.SelectMany(e => PrefixEntries(host, e.Uid, expiration)).DistinctBy(r => (r.Key, r.Subkey)).ToArray();
        var declared = HostEntries.DeclareAsync(dht, host, experts.Select(e => (KeyOf(e.Uid), (IMessage)e.Record)), expiration, cancellationToken);
        await dht.StoreManyAsync(prefixes, cancellationToken);
        return await declared;
    }

    /// <summary>
    /// The live children of each prefix. A prefix found empty is remembered as empty for
    /// <see cref="ExpertDirectoryOptions.NegativeCacheTtl"/> and a prefix found with children is reused for
    /// <see cref="ExpertDirectoryOptions.PositiveCacheTtl"/>, so beam searches of consecutive batches do not
    /// walk the DHT again, and a search over a sparse grid does not keep paying for dead branches.
    /// </summary>
    public async Task<IReadOnlyDictionary<ExpertPrefix, ExpertSuccessors>> FindSuccessorsAsync(IReadOnlyCollection<ExpertPrefix> prefixes, CancellationToken cancellationToken) =>
        await CachedLookupAsync(prefixes, _successors, KeyOf, Successors, s => s.IsEmpty ? _options.NegativeCacheTtl : _options.PositiveCacheTtl, cancellationToken);

    /// <summary>
    /// Every live uid under <paramref name="root"/> (a grid's <c>ffn.</c>, or deeper), found by walking the
    /// prefix entries one level at a time, each level one multi-key lookup; at most <paramref name="limit"/>
    /// uids, in grid order, and whether more were left out. A coordinate holds one uid in the prefix
    /// entries, so a grid whose uids end at different depths under one coordinate shows one of them. The walk
    /// goes at most <see cref="MaxListDepth"/> coordinates deep: what a host announces deeper is not listed.
    /// </summary>
    public async Task<(IReadOnlyList<ExpertUid> Uids, bool Truncated)> ListAsync(ExpertPrefix root, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        var uids = new List<ExpertUid>();
        var level = new List<ExpertPrefix> { root };
        bool more = false;
        for (int depth = root.Coordinates.Count; level.Count > 0 && depth < MaxListDepth; depth++)
        {
            var successors = await FindSuccessorsAsync(level, cancellationToken);
            var next = new List<ExpertPrefix>();
            foreach (var prefix in level)
                foreach (var (coordinate, uid) in successors[prefix].Children.OrderBy(c => c.Key))
                {
                    if (uid.Coordinates.Count == depth + 1) uids.Add(uid);
                    // Successors took only uids under prefix + coordinate, so the deeper prefix is that uid's own.
                    else if (depth + 1 < MaxListDepth) next.Add(uid.Prefix(depth + 1));
                }
            // Each prefix below leads to a uid at least: no more of them are worth a lookup than uids may still be listed.
            if (uids.Count + next.Count > limit) (more, next) = (true, next[..Math.Max(0, limit - uids.Count)]);
            level = next;
        }
        uids.Sort((a, b) => CompareCoordinates(a.Coordinates, b.Coordinates));
        return uids.Count > limit ? (uids[..limit], true) : (uids, more);
    }

    /// <summary>How many coordinates deep <see cref="ListAsync"/> walks (a grid of 8 dimensions is the most <c>train</c> makes).</summary>
    public const int MaxListDepth = 16;

    private static int CompareCoordinates(IReadOnlyList<int> a, IReadOnlyList<int> b)
    {
        for (int i = 0; i < Math.Min(a.Count, b.Count); i++)
            if (a[i] != b[i]) return a[i].CompareTo(b[i]);
        return a.Count.CompareTo(b.Count);
    }

    private static IEnumerable<DhtRecord> PrefixEntries(PeerIdentity host, ExpertUid uid, DateTimeOffset expiration)
    {
        var value = System.Text.Encoding.UTF8.GetBytes(uid.Value);
        for (int depth = 0; depth < uid.Coordinates.Count; depth++)
        {
            var coordinate = uid.Coordinates[depth].ToString(System.Globalization.CultureInfo.InvariantCulture);
            yield return DhtRecord.Signed(KeyOf(uid.Prefix(depth)), $"{coordinate}:{host.PeerId}", value, expiration, host);
        }
    }

    private static ExpertSuccessors Successors(ExpertPrefix prefix, DhtValue? value)
    {
        var children = new Dictionary<int, ExpertUid>();
        if (value is { IsDictionary: true })
        {
            foreach (var entry in value.Records)
            {
                // Entries that do not describe a uid under this prefix at that coordinate are ignored.
                int colon = entry.Subkey!.IndexOf(':');
                if (colon <= 0 || !int.TryParse(entry.Subkey.AsSpan(0, colon), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int coordinate)) continue;
                if (!ExpertUid.TryParse(System.Text.Encoding.UTF8.GetString(entry.Value.Span), out var uid, out _)) continue;
                if (!prefix.Leads(coordinate, uid)) continue;
                children[coordinate] = uid;
            }
        }
        return new ExpertSuccessors(prefix, children);
    }

    /// <summary>The hosts of one uid asked from the DHT now, past the cache (which is refreshed with the answer).</summary>
    public async Task<IReadOnlyList<ExpertHostInfo>> RediscoverAsync(ExpertUid uid, CancellationToken cancellationToken)
    {
        lock (_hosts) _hosts.Remove(uid);
        return (await FindAsync([uid], cancellationToken))[uid];
    }

    /// <summary>
    /// The live hosts of each uid (every uid asked is in the answer, with no hosts when none is
    /// announced). Entries that do not parse are skipped: a host can only spoil its own entry. Hosts found
    /// are reused for <see cref="ExpertDirectoryOptions.PositiveCacheTtl"/>; <see cref="RediscoverAsync"/>
    /// asks again at once.
    /// </summary>
    public async Task<IReadOnlyDictionary<ExpertUid, IReadOnlyList<ExpertHostInfo>>> FindAsync(IReadOnlyCollection<ExpertUid> uids, CancellationToken cancellationToken) =>
        await CachedLookupAsync(uids, _hosts, KeyOf, Hosts, hosts => hosts.Count > 0 ? _options.PositiveCacheTtl : null, cancellationToken);

    /// <summary>A host's label as it claims it (untrusted); null when empty or not <see cref="Settings.DisplayLabel.IsShowable"/>.</summary>
    private static string? Label(string text) => Settings.DisplayLabel.IsShowable(text) ? text : null;

    /// <summary>
    /// A host's load as it claims it, within what a load can be: a queue depth and rows not below zero,
    /// latencies finite and not below zero (what is not counts as 0), so no host can sort itself ahead of the
    /// others with a negative queue or break a listing with a NaN.
    /// </summary>
    private static ExpertLoad Plausible(ExpertLoad? load) => load is null ? new ExpertLoad() : new()
    {
        QueueDepth = Math.Max(0, load.QueueDepth),
        LatencyP50Ms = double.IsFinite(load.LatencyP50Ms) ? Math.Max(0, load.LatencyP50Ms) : 0,
        LatencyP95Ms = double.IsFinite(load.LatencyP95Ms) ? Math.Max(0, load.LatencyP95Ms) : 0,
        RowsLastMinute = Math.Max(0, load.RowsLastMinute),
    };

    /// <summary>The snapshot a host says its weights are, when it names one as a SHA-256 can be written; else null.</summary>
    private static string? Snapshot(string sha256) => sha256.Length == 64 && sha256.All(char.IsAsciiHexDigitLower) ? sha256 : null;

    /// <summary>A host's announcement time as it claims it (untrusted); null when unset or not a time.</summary>
    private static DateTimeOffset? AnnouncedAt(long unixMs) =>
        unixMs > 0 && unixMs < DateTimeOffset.MaxValue.ToUnixTimeMilliseconds() ? DateTimeOffset.FromUnixTimeMilliseconds(unixMs) : null;

    private static IReadOnlyList<ExpertHostInfo> Hosts(ExpertUid uid, DhtValue? value) =>
        HostEntries.Parse(value, ExpertRecord.Parser, r => r.Addresses)
            .Select(e => new ExpertHostInfo(uid, e.Host, e.Addresses, e.Record.Type, e.Record.SchemaHash, Plausible(e.Record.Load), e.Record.Version, e.Expiration,
                Label(e.Record.Domain), Label(e.Record.Contributor), AnnouncedAt(e.Record.AnnouncedAtUnixMs), Snapshot(e.Record.WeightsSha256)))
            .ToArray();

    /// <summary>
    /// The value of each item: from <paramref name="cache"/> while its entry is fresh, the others parsed
    /// from one multi-key DHT lookup and kept for the time <paramref name="ttlOf"/> gives them (null: not kept).
    /// </summary>
    private async Task<Dictionary<TItem, TValue>> CachedLookupAsync<TItem, TValue>(IEnumerable<TItem> items, Dictionary<TItem, (TValue Value, DateTimeOffset Until)> cache,
        Func<TItem, string> keyOf, Func<TItem, DhtValue?, TValue> parse, Func<TValue, TimeSpan?> ttlOf, CancellationToken cancellationToken) where TItem : notnull
    {
        var now = _time.GetUtcNow();
        var answer = new Dictionary<TItem, TValue>();
        var ask = new Dictionary<string, TItem>(StringComparer.Ordinal);
        lock (cache)
        {
            foreach (var item in items.Distinct())
            {
                if (cache.TryGetValue(item, out var cached) && cached.Until > now) answer[item] = cached.Value;
                else ask[keyOf(item)] = item;
            }
        }
        if (ask.Count == 0) return answer;
        var values = await dht.GetManyAsync(ask.Keys, latest: true, cancellationToken);
        var later = _time.GetUtcNow();
        foreach (var (key, item) in ask)
        {
            var value = answer[item] = parse(item, values.GetValueOrDefault(key));
            lock (cache)
            {
                if (ttlOf(value) is { } ttl) cache[item] = (value, later + ttl);
                else cache.Remove(item);
            }
        }
        return answer;
    }
}
