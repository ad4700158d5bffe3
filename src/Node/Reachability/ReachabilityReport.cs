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
public sealed record DialbackResult(string Peer, bool Reached, string? Problem, string? ObservedAddress, TimeSpan? ClockOffset);

/// <summary>The outcome of one reachability check.</summary>
/// <param name="State">Reachable, unreachable, or unknown.</param>
/// <param name="Address">The address peers were asked to dial.</param>
/// <param name="CheckedAt">When.</param>
/// <param name="Results">One per peer asked.</param>
public sealed record ReachabilityReport(Reach State, string Address, DateTimeOffset? CheckedAt, IReadOnlyList<DialbackResult> Results)
{
    /// <summary>Before any check.</summary>
    public static ReachabilityReport NotChecked(string address) => new(Reach.Unknown, address, null, []);

    /// <summary>The outcome of asking: reachable when any echo arrived, unreachable when peers answered and none did, else unknown.</summary>
    public static ReachabilityReport Of(string address, DateTimeOffset at, IReadOnlyList<DialbackResult> results) =>
        new(results.Any(r => r.Reached) ? Reach.Reachable : results.Any(r => r.ObservedAddress is not null) ? Reach.Unreachable : Reach.Unknown, address, at, results);
}
