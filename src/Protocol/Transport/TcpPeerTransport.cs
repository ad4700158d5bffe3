using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Protocol.Transport;

/// <summary>The peer protocol over real TCP connections from a <see cref="PeerConnectionPool"/>.</summary>
public sealed class TcpPeerTransport(PeerConnectionPool pool, TimeProvider time) : IPeerTransport
{
    /// <inheritdoc />
    public async Task<PeerResponse> CallAsync(PeerEndpoint target, PeerRequest request, CancellationToken cancellationToken)
    {
        var remaining = request.Deadline - time.GetUtcNow();
        if (remaining <= TimeSpan.Zero)
            return PeerResponse.Error(StatusCode.DeadlineExceeded, $"{request.Method} to {target}: the deadline passed before the call was sent.");
        PeerConnection connection;
        try
        {
            connection = await pool.GetAsync(target, cancellationToken).WaitAsync(remaining, time, cancellationToken);
        }
        catch (PeerUnavailableException e)
        {
            return PeerResponse.Error(StatusCode.Unavailable, e.Message);
        }
        catch (TimeoutException)
        {
            return PeerResponse.Error(StatusCode.DeadlineExceeded, $"{request.Method} to {target}: no connection within the {remaining.TotalMilliseconds:F0} ms left.");
        }
        return await connection.CallAsync(request, cancellationToken);
    }
}
