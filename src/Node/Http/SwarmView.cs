using MoEMesh.Node.Hosting;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Routing.Directory;

namespace MoEMesh.Node.Http;

/// <summary>
/// The swarm as this node sees it, for GET /v1/experts, /v1/experts/{uid} and /v1/peers (and the status
/// page built on them). Everything a peer announced is shown as it claims it: untrusted text the page
/// renders as text, never as markup.
/// </summary>
internal static class SwarmView
{
    /// <summary>Most uids listed per grid; a larger grid is listed in part and says so.</summary>
    public const int MaxUidsPerGrid = 1024;

    /// <summary>
    /// Every live expert of the grids this node knows of (those of its own experts, of the models it holds
    /// or has loaded, and <paramref name="asked"/>), with its hosts.
    /// </summary>
    public static async Task<SwarmExperts> ExpertsAsync(MeshNode node, IReadOnlyList<ExpertPrefix> asked, CancellationToken cancellationToken)
    {
        var grids = node.HostedUids.Select(u => u.Name)
            .Concat(node.HeldModels.SelectMany(m => m.Spec.Layers).Concat(node.LoadedModels.SelectMany(m => m.Spec.Layers)).Where(l => !l.IsDense).Select(l => l.GridName))
            .Select(name => ExpertPrefix.Parse(name + "."))
            .Concat(asked)
            .Distinct()
            .OrderBy(g => g.Value, StringComparer.Ordinal)
            .ToArray();
        var listings = await Task.WhenAll(grids.Select(g => node.Directory.ListAsync(g, MaxUidsPerGrid, cancellationToken)));
        var uids = listings.SelectMany(l => l.Uids).Distinct().ToArray();
        var hosts = await node.Directory.FindAsync(uids, cancellationToken);
        return new SwarmExperts(
            grids.Select((g, i) => new GridListing(g.Value, listings[i].Uids.Count, listings[i].Truncated)).ToArray(),
            uids.Select(u => new SwarmExpert(u.Value, hosts[u].Select(h => Host(node, h)).ToArray())).ToArray());
    }

    /// <summary>One host of an expert as its record says.</summary>
    public static ExpertHostView Host(MeshNode node, ExpertHostInfo h) => new(
        h.Host.ToString(), h.Host == node.PeerId, h.Addresses.Select(a => a.ToString()).ToArray(), h.Type, h.SchemaHash, h.Version, h.Domain, h.Contributor,
        h.Load.QueueDepth, Math.Round(h.Load.LatencyP50Ms, 3), Math.Round(h.Load.LatencyP95Ms, 3), h.Load.RowsLastMinute, h.AnnouncedAt, h.Expiration);

    /// <summary>The DHT's routing table and bans, and what this node's expert calls have seen of each peer.</summary>
    public static SwarmPeers Peers(MeshNode node)
    {
        var dht = node.Dht.Health();
        var calls = node.Health;
        var peers = dht.Buckets.SelectMany(b => b.Contacts.Select(c =>
        {
            var p95 = calls.P95(c.PeerId);
            return new PeerView(c.PeerId.ToString(), c.Address.ToString(), b.Depth, calls.IsBackedOff(c.PeerId), p95 is { } t ? Math.Round(t.TotalMilliseconds, 3) : null);
        })).ToArray();
        return new SwarmPeers(
            node.PeerId.ToString(),
            dht.Contacts,
            dht.Buckets.Select(b => new BucketView(b.Depth, b.Contacts.Count, b.Replacements)).ToArray(),
            peers,
            dht.Banned.Select(b => new BannedPeerView(b.PeerId?.ToString(), b.Id.ToString(), b.Failures, b.Until)).ToArray());
    }
}

/// <summary>GET /v1/experts: the grids listed and every expert found in them.</summary>
public sealed record SwarmExperts(IReadOnlyList<GridListing> Grids, IReadOnlyList<SwarmExpert> Experts);

/// <summary>A grid walked in the DHT: its prefix, how many uids were found, and whether it holds more than were listed.</summary>
public sealed record GridListing(string Prefix, int Found, bool Truncated);

/// <summary>An expert and its hosts (several are replicas).</summary>
public sealed record SwarmExpert(string Uid, IReadOnlyList<ExpertHostView> Hosts);

/// <summary>
/// A host of an expert as its signed record says: who (and whether it is this node), where, what, how
/// trained (optimizer steps, domain, contributor), how loaded (queue, latency, rows served over the last
/// minute, as of its last announcement), when it announced (its clock) and when the record lapses.
/// </summary>
public sealed record ExpertHostView(string PeerId, bool Local, IReadOnlyList<string> Addresses, string Type, string SchemaHash, long Updates, string? Domain, string? Contributor,
    int QueueDepth, double LatencyP50Ms, double LatencyP95Ms, long RowsLastMinute, DateTimeOffset? AnnouncedAt, DateTimeOffset ExpiresAt);

/// <summary>GET /v1/peers: this node's routing table by bucket, its contacts, and the peers it bans now.</summary>
public sealed record SwarmPeers(string Self, int RoutingTableSize, IReadOnlyList<BucketView> Buckets, IReadOnlyList<PeerView> Peers, IReadOnlyList<BannedPeerView> Banned);

/// <summary>A k-bucket: its depth (shared leading bits with this node's id), contacts and waiting replacements.</summary>
public sealed record BucketView(int Depth, int Contacts, int Replacements);

/// <summary>A contact: its PeerId, address, bucket, and whether this node's expert calls back off from it (with their recent p95).</summary>
public sealed record PeerView(string PeerId, string Address, int Bucket, bool BackedOff, double? CallP95Ms);

/// <summary>A peer the DHT bans after consecutive failures (its PeerId when known, its Kademlia id), until when.</summary>
public sealed record BannedPeerView(string? PeerId, string NodeId, int Failures, DateTimeOffset Until);
