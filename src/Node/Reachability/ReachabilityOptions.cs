using MoEMesh.Settings;

namespace MoEMesh.Node.Reachability;

/// <summary>
/// How a node finds out whether peers can dial it (the <c>Reachability</c> section), and what it does when
/// they cannot: act as a DHT client and take calls through relays.
/// </summary>
public sealed class ReachabilityOptions
{
    /// <summary>Ask peers to dial this node back at start and every <see cref="CheckPeriod"/>. Default true.</summary>
    public bool Check { get; set; } = true;

    /// <summary>How often the check runs again (a router's port forwarding may change). Default 10 min.</summary>
    [Duration]
    public TimeSpan CheckPeriod { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Peers asked to dial back each time; one that gets through is enough. Default 3.</summary>
    [Count(Max = 16)]
    public int PeersAsked { get; set; } = 3;

    /// <summary>How long one dial-back may take, connect, TLS, handshake and echo together. Default 5 s.</summary>
    [Duration]
    public TimeSpan DialbackTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Dial-backs this node makes for others per minute, in all; more are refused. Default 30.</summary>
    [Count]
    public int MaxDialbacksPerMinute { get; set; } = 30;

    /// <summary>Relays an unreachable node keeps a reservation at (each announced). Default 1.</summary>
    [Count(Max = 4)]
    public int Relays { get; set; } = 1;

    /// <summary>Reachable peers timed to choose relays from (the fastest that accept are taken). Default 8.</summary>
    [Count(Max = 64)]
    public int RelayCandidates { get; set; } = 8;
}
