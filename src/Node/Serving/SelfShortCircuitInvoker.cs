using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Invocation;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Node.Serving;

/// <summary>
/// The invoker a gating layer on this node calls remote experts with: a call whose host is this node
/// itself (it found its own announcement in the DHT) goes to the local experts without a socket.
/// </summary>
internal sealed class SelfShortCircuitInvoker(PeerId self, IExpertInvoker local, IExpertInvoker remote) : IExpertInvoker
{
    public Task<ExpertCallResult<Tensor>> ForwardAsync(ExpertTarget target, Tensor input, Compression compression, DateTimeOffset deadline, CancellationToken cancellationToken) =>
        Pick(target).ForwardAsync(target, input, compression, deadline, cancellationToken);

    public Task<ExpertCallResult<Tensor>> BackwardAsync(ExpertTarget target, Tensor input, Tensor outputGradient, bool frozen, Compression compression, DateTimeOffset deadline,
        CancellationToken cancellationToken) =>
        Pick(target).BackwardAsync(target, input, outputGradient, frozen, compression, deadline, cancellationToken);

    public Task<ExpertCallResult<ExpertInfo>> InfoAsync(ExpertTarget target, DateTimeOffset deadline, CancellationToken cancellationToken) =>
        Pick(target).InfoAsync(target, deadline, cancellationToken);

    private IExpertInvoker Pick(ExpertTarget target) => target.Host.PeerId == self ? local : remote;
}
