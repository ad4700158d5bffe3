using MoEMesh.Dht.Ids;

namespace MoEMesh.Dht.Node;

/// <summary>
/// Peers that failed, banned for BanBase × 2^(n−1) after their n-th consecutive failure (at most
/// BanMax); one success clears the record. Not thread-safe: the owning node serialises access.
/// </summary>
internal sealed class PeerBans(DhtOptions options)
{
    private readonly Dictionary<NodeId, (int Failures, DateTimeOffset Until, Protocol.Identity.PeerId? Peer)> _bans = [];

    public int Count => _bans.Count;

    public bool IsBanned(NodeId id, DateTimeOffset now) => _bans.TryGetValue(id, out var ban) && ban.Until > now;

    /// <summary>Records a failure of the peer <paramref name="id"/> (whose PeerId is <paramref name="peer"/> when known); returns how long it is now banned.</summary>
    public TimeSpan Fail(NodeId id, DateTimeOffset now, Protocol.Identity.PeerId? peer = null)
    {
        int failures = _bans.TryGetValue(id, out var ban) ? ban.Failures + 1 : 1;
        var length = Duration(failures, options);
        _bans[id] = (failures, now + length, peer ?? ban.Peer);
        return length;
    }

    /// <summary>The peers banned at <paramref name="now"/>.</summary>
    public IEnumerable<DhtBannedPeer> Banned(DateTimeOffset now) =>
        _bans.Where(b => b.Value.Until > now).Select(b => new DhtBannedPeer(b.Key, b.Value.Peer, b.Value.Failures, b.Value.Until));

    public void Clear(NodeId id) => _bans.Remove(id);

    /// <summary>Forgets peers whose ban ended more than BanMax ago (they are treated as new if seen again).</summary>
    public void Purge(DateTimeOffset now)
    {
        foreach (var id in _bans.Where(b => b.Value.Until + options.BanMax < now).Select(b => b.Key).ToList()) _bans.Remove(id);
    }

    /// <summary>The ban after <paramref name="failures"/> consecutive failures.</summary>
    public static TimeSpan Duration(int failures, DhtOptions options)
    {
        double factor = Math.Pow(2, Math.Min(failures - 1, 30));
        return TimeSpan.FromTicks((long)Math.Min(options.BanMax.Ticks, options.BanBase.Ticks * factor));
    }
}
