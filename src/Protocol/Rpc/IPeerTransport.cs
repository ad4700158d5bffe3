namespace MoEMesh.Protocol.Rpc;

/// <summary>
/// The client side of the peer protocol: one call to one peer. Implemented over TCP
/// (<see cref="Transport.TcpPeerTransport"/>) and in memory (<see cref="InMemory.InMemoryNetwork"/>).
/// Network outcomes (timeout, unreachable, refused) come back as response statuses; only the caller's
/// own cancellation throws.
/// </summary>
public interface IPeerTransport
{
    /// <summary>Sends <paramref name="request"/> and waits for the answer until its deadline.</summary>
    Task<PeerResponse> CallAsync(PeerEndpoint target, PeerRequest request, CancellationToken cancellationToken);
}
