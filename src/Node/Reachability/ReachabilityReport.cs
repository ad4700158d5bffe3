using System.Net;
using System.Net.Sockets;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Rpc;

namespace MoEMesh.Node.Reachability;

/// <summary>Whether peers can dial this node.</summary>
public enum Reach
{
    /// <summary>Not checked yet, or no peer could be asked (the first node of a swarm).</summary>
    Unknown,

    /// <summary>At least one peer dialled it back at its announced address.</summary>
    Reachable,

    /// <summary>Peers answered, and none could dial it back.</summary>
    Unreachable,
}

/// <summary>What one peer said when asked to dial back.</summary>
/// <param name="Peer">Who was asked.</param>
/// <param name="Reached">Whether its echo arrived here (only that counts).</param>
/// <param name="Problem">Why not, in the peer's words or this node's; null when reached.</param>
/// <param name="ObservedAddress">The IP the peer saw this node's connection come from; null when it did not answer.</param>
/// <param name="ClockOffset">The peer's clock minus this node's, from the answer's time stamp (half the round trip either way); null when it did not answer.</param>
/// <param name="Dialled">The address the peer says it dialled (the one asked for, or this node's IP as it saw it at that port); null when it did not say.</param>
public sealed record DialbackResult(string Peer, bool Reached, string? Problem, string? ObservedAddress, TimeSpan? ClockOffset, string? Dialled = null);

/// <summary>The outcome of one reachability check.</summary>
/// <param name="State">Reachable, unreachable, or unknown.</param>
/// <param name="Address">The address peers were asked to dial.</param>
/// <param name="CheckedAt">When.</param>
/// <param name="Results">One per peer asked.</param>
/// <param name="ReachedAt">
/// Where peers reach this node: <paramref name="Address"/> when an echo came from a dial there; else an
/// address at least <see cref="Agreeing"/> peers of different networks dialled it back at (its IP as each of
/// them saw it, at the port asked: a forwarded port behind a NAT, announced as a LAN or loopback address);
/// null when neither.
/// </param>
public sealed record ReachabilityReport(Reach State, string Address, DateTimeOffset? CheckedAt, IReadOnlyList<DialbackResult> Results, string? ReachedAt = null)
{
    /// <summary>Peers (of different networks) that must agree on another address before it is believed: one could say anything it likes.</summary>
    public const int Agreeing = 2;

    /// <summary>Before any check.</summary>
    public static ReachabilityReport NotChecked(string address) => new(Reach.Unknown, address, null, []);

    /// <summary>
    /// The outcome of asking. Unreachable when a peer saw this node at a public IP and no peer reached it at one
    /// (peers on its own LAN may, the internet cannot); else reachable at <paramref name="address"/> when an echo
    /// came from a dial there, or at another address when <see cref="Agreeing"/> peers of different networks
    /// reached it there (each at the IP it saw, at the port asked; the widest scope first); else unreachable when
    /// peers answered, unknown when none did.
    /// </summary>
    public static ReachabilityReport Of(string address, DateTimeOffset at, IReadOnlyList<DialbackResult> results)
    {
        if (!PeerAddress.TryParse(address, out var asked)) return new(Reach.Unknown, address, at, results);
        var echoes = results.Where(r => r.Reached && r.Dialled is not null).ToArray();
        bool seenPublicly = results.Any(r => Scope(r.ObservedAddress) == AddressScope.Public);
        bool reachedPublicly = echoes.Any(r => Scope(PeerAddress.TryParse(r.Dialled, out var d) ? d.Host : null) == AddressScope.Public);
        bool answered = results.Any(r => r.ObservedAddress is not null);
        if (seenPublicly && !reachedPublicly) return new(Reach.Unreachable, address, at, results);
        if (echoes.Any(r => r.Dialled == address)) return new(Reach.Reachable, address, at, results, address);
        var elsewhere = echoes
            .Where(r => PeerAddress.TryParse(r.Dialled, out var d) && d.Port == asked.Port && d.Host == r.ObservedAddress)
            .GroupBy(r => r.Dialled!)
            .Where(g => g.Select(r => NetworkOf(r.Peer)).Distinct().Count() >= Agreeing)
            .OrderByDescending(g => Scope(PeerAddress.Parse(g.Key).Host)).ThenByDescending(g => g.Count())
            .FirstOrDefault();
        if (elsewhere is not null) return new(Reach.Reachable, address, at, results, elsewhere.Key);
        return new(answered ? Reach.Unreachable : Reach.Unknown, address, at, results);
    }

    /// <summary>How widely an address can be reached: a name counts as public.</summary>
    public static AddressScope Scope(string? host)
    {
        if (host is null) return AddressScope.None;
        if (!IPAddress.TryParse(host, out var ip)) return AddressScope.Public;
        if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
        if (IPAddress.IsLoopback(ip)) return AddressScope.Loopback;
        if (ip.AddressFamily == AddressFamily.InterNetworkV6)
            return ip.IsIPv6LinkLocal || ip.IsIPv6SiteLocal || ip.IsIPv6UniqueLocal ? AddressScope.Private : AddressScope.Public;
        var b = ip.GetAddressBytes();
        bool isPrivate = b[0] == 10 || (b[0] == 172 && b[1] is >= 16 and <= 31) || (b[0] == 192 && b[1] == 168) || (b[0] == 169 && b[1] == 254)
                         || (b[0] == 100 && b[1] is >= 64 and <= 127); // carrier-grade NAT
        return isPrivate ? AddressScope.Private : AddressScope.Public;
    }

    /// <summary>The network of the peer in a result ("PEERID@host:port"), so that agreeing peers come from different places.</summary>
    private static string NetworkOf(string peer)
    {
        var host = PeerEndpoint.TryParse(peer, out var endpoint) ? endpoint.Address.Host : peer;
        return IPAddress.TryParse(host, out var ip) ? AddressNetwork.Of(ip) : host;
    }
}

/// <summary>How widely an address can be reached, narrowest first.</summary>
public enum AddressScope
{
    /// <summary>No address.</summary>
    None,

    /// <summary>This machine only (127.0.0.0/8, ::1).</summary>
    Loopback,

    /// <summary>A private network (10/8, 172.16/12, 192.168/16, link-local, carrier-grade NAT 100.64/10, IPv6 ULA).</summary>
    Private,

    /// <summary>The internet (or a host name).</summary>
    Public,
}
