using MoEMesh.Experts;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Invocation;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing.Tests;

/// <summary>The gating node's own experts, called in process (the node wires its batching runtime the same way).</summary>
internal sealed class LocalExpertInvoker(IReadOnlyDictionary<string, IExpert> experts) : IExpertInvoker
{
    public Task<ExpertCallResult<Tensor>> ForwardAsync(ExpertTarget target, Tensor input, Compression compression, DateTimeOffset deadline, CancellationToken cancellationToken) =>
        Task.FromResult(experts.TryGetValue(target.Uid.Value, out var e)
            ? ExpertCallResult<Tensor>.Answer(e.Forward(input))
            : ExpertCallResult<Tensor>.Failed(CallOutcome.Rejected, $"{target.Uid} is not hosted locally"));

    public Task<ExpertCallResult<Tensor>> BackwardAsync(ExpertTarget target, Tensor input, Tensor outputGradient, bool frozen, Compression compression, DateTimeOffset deadline, CancellationToken cancellationToken) =>
        Task.FromResult(ExpertCallResult<Tensor>.Answer(experts[target.Uid.Value].Backward(input, outputGradient)));

    public Task<ExpertCallResult<ExpertInfo>> InfoAsync(ExpertTarget target, DateTimeOffset deadline, CancellationToken cancellationToken) =>
        throw new NotSupportedException();
}
