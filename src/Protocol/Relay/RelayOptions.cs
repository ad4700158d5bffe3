using MoEMesh.Settings;

namespace MoEMesh.Protocol.Relay;

/// <summary>
/// What a node spends relaying for peers that cannot be dialled (a node reads them from its <c>Relay</c>
/// section). A relay sees only ciphertext, so it bounds what it can see: reservations, circuits (relayed
/// connections, each carrying any number of calls) and bytes.
/// </summary>
public sealed class RelayOptions
{
    /// <summary>Whether this node relays for others (only while it is reachable itself). Default true.</summary>
    public bool Serve { get; set; } = true;

    /// <summary>Peers that may hold a reservation here at once; more are refused. Default 32.</summary>
    [Count]
    public int MaxReservations { get; set; } = 32;

    /// <summary>
    /// Reservations held by peers of one network (an IPv4 /24, an IPv6 /48) at once: PeerIds cost nothing to
    /// make, so one machine must not take every place. Default 4.
    /// </summary>
    [Count]
    public int MaxReservationsPerNetwork { get; set; } = 4;

    /// <summary>Relayed connections spliced or being set up at once, in all; more are refused. Default 256.</summary>
    [Count]
    public int MaxCircuits { get; set; } = 256;

    /// <summary>Relayed connections to one reserved peer at once; more are refused. Default 64.</summary>
    [Count]
    public int MaxCircuitsPerPeer { get; set; } = 64;

    /// <summary>Bytes per second relayed in all, both directions together; circuits wait for their turn beyond it. Default 32 MiB.</summary>
    [Bytes(Min = 65536)]
    public long BytesPerSecond { get; set; } = 32L << 20;

    /// <summary>
    /// Longest a <c>relay.listen</c> call waits for a circuit before answering empty; a reservation lapses
    /// when no listen call has been seen for twice this. Default 20 s.
    /// </summary>
    [Duration]
    public TimeSpan ListenWindow { get; set; } = TimeSpan.FromSeconds(20);
}
