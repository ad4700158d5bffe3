using MoEMesh.Protocol.Rpc;

namespace MoEMesh.Node.Cli;

/// <summary>A transport that counts the bytes of every call it carries (headers and payloads, both ways), for bytes-per-text figures.</summary>
internal sealed class CountingTransport(IPeerTransport inner) : IPeerTransport
{
    private long _bytes;

    /// <summary>Bytes sent and received so far.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    public async Task<PeerResponse> CallAsync(PeerEndpoint target, PeerRequest request, CancellationToken cancellationToken)
    {
        Interlocked.Add(ref _bytes, request.Method.Length + request.Header.Length + request.Payload.Length);
        var response = await inner.CallAsync(target, request, cancellationToken);
        Interlocked.Add(ref _bytes, response.Header.Length + response.Payload.Length);
        return response;
    }
}
