using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Tensors;

namespace MoEMesh.Routing.Invocation;

/// <summary>An expert at a host.</summary>
public readonly record struct ExpertTarget(ExpertUid Uid, PeerEndpoint Host)
{
    /// <inheritdoc />
    public override string ToString() => $"{Uid} at {Host}";
}

/// <summary>
/// The one way Routing reaches experts. <see cref="RemoteExpertInvoker"/> calls hosts over the peer
/// protocol; the node wires a local short-circuit for experts it hosts itself. Every call ends by its
/// deadline; only the caller's own cancellation throws.
/// </summary>
public interface IExpertInvoker
{
    /// <summary>The expert's output for a batch; the caller owns the returned tensor.</summary>
    Task<ExpertCallResult<Tensor>> ForwardAsync(ExpertTarget target, Tensor input, Compression compression, DateTimeOffset deadline, CancellationToken cancellationToken);

    /// <summary>The input gradient for a batch; the host also steps the expert's optimizer unless <paramref name="frozen"/>.</summary>
    Task<ExpertCallResult<Tensor>> BackwardAsync(ExpertTarget target, Tensor input, Tensor outputGradient, bool frozen, Compression compression, DateTimeOffset deadline, CancellationToken cancellationToken);

    /// <summary>The expert's schema, version and load.</summary>
    Task<ExpertCallResult<ExpertInfo>> InfoAsync(ExpertTarget target, DateTimeOffset deadline, CancellationToken cancellationToken);
}
