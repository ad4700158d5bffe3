using MoEMesh.Protocol.Wire;

namespace MoEMesh.Protocol.Rpc;

/// <summary>Thrown by a handler to answer with a specific status and message.</summary>
public sealed class PeerRpcException(StatusCode status, string message) : Exception(message)
{
    /// <summary>The status to answer with.</summary>
    public StatusCode Status { get; } = status;
}
