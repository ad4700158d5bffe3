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
/// Where peers reach this node: <paramref name="Address"/> when any echo came from a dial there; else an
/// address at least <see cref="Agreeing"/> peers dialled it back at (its IP as they see it, at that port:
/// a forwarded port behind a NAT, announced as a LAN or loopback address); null when neither.
/// </param>
public sealed record ReachabilityReport(Reach State, string Address, DateTimeOffset? CheckedAt, IReadOnlyList<DialbackResult> Results, string? ReachedAt = null)
{
    /// <summary>Peers that must agree on another address before it is believed (one could say anything it likes).</summary>
    public const int Agreeing = 2;

    /// <summary>Before any check.</summary>
    public static ReachabilityReport NotChecked(string address) => new(Reach.Unknown, address, null, []);

    /// <summary>
    /// The outcome of asking: reachable when an echo came from a dial at <paramref name="address"/>, or from dials at
    /// one other address by <see cref="Agreeing"/> peers; unreachable when peers answered and neither holds; else unknown.
    /// </summary>
    public static ReachabilityReport Of(string address, DateTimeOffset at, IReadOnlyList<DialbackResult> results)
    {
        var echoes = results.Where(r => r.Reached).ToArray();
        if (echoes.Any(r => string.IsNullOrEmpty(r.Dialled) || r.Dialled == address)) return new(Reach.Reachable, address, at, results, address);
        var elsewhere = echoes.GroupBy(r => r.Dialled!).Where(g => g.Count() >= Agreeing).OrderByDescending(g => g.Count()).FirstOrDefault();
        if (elsewhere is not null) return new(Reach.Reachable, address, at, results, elsewhere.Key);
        return new(results.Any(r => r.ObservedAddress is not null) ? Reach.Unreachable : Reach.Unknown, address, at, results);
    }
}
