using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Invocation;
using MoEMesh.Tensors;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing.Tests;

/// <summary>How a fake expert behaves.</summary>
internal sealed record FakeBehaviour(float Scale = 1f, TimeSpan Delay = default, ExpertCallOutcome Fail = ExpertCallOutcome.Ok, bool NaN = false);

/// <summary>
/// Deterministic experts keyed by host address and uid: output = input × Scale, after Delay on the given
/// clock (cancellable), or a failure. Records every call and every cancellation.
/// </summary>
internal sealed class FakeExperts(TimeProvider time) : IExpertInvoker
{
    private readonly Dictionary<(string Host, string Uid), FakeBehaviour> _behaviours = [];

    public List<(string Host, string Uid, int Rows)> Calls { get; } = [];

    public List<(string Host, string Uid)> Cancelled { get; } = [];

    public FakeExperts With(string host, string uid, FakeBehaviour behaviour)
    {
        _behaviours[(host, uid)] = behaviour;
        return this;
    }

    public async Task<ExpertCallResult<Tensor>> ForwardAsync(ExpertTarget target, Tensor input, Compression compression, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var key = (target.Host.Address.Host, target.Uid.Value);
        lock (Calls) Calls.Add((key.Host, key.Value, input.Rows));
        var behaviour = _behaviours.GetValueOrDefault(key) ?? new FakeBehaviour();
        if (behaviour.Delay > TimeSpan.Zero)
        {
            var wait = behaviour.Delay < deadline - time.GetUtcNow() ? behaviour.Delay : deadline - time.GetUtcNow();
            try
            {
                await Task.Delay(wait, time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                lock (Calls) Cancelled.Add(key);
                throw;
            }
            if (time.GetUtcNow() >= deadline) return ExpertCallResult<Tensor>.Failed(ExpertCallOutcome.Timeout, "no answer by the deadline");
        }
        if (behaviour.Fail != ExpertCallOutcome.Ok) return ExpertCallResult<Tensor>.Failed(behaviour.Fail, $"{key} fails");
        var output = Tensor.FromSpan(input.Span, input.Shape);
        for (int i = 0; i < output.Length; i++) output.Span[i] = behaviour.NaN ? float.NaN : output.Span[i] * behaviour.Scale;
        return ExpertCallResult<Tensor>.Answer(output);
    }

    public Task<ExpertCallResult<Tensor>> BackwardAsync(ExpertTarget target, Tensor input, Tensor outputGradient, Compression compression, DateTimeOffset deadline, CancellationToken cancellationToken) =>
        throw new NotSupportedException();

    public Task<ExpertCallResult<ExpertInfo>> InfoAsync(ExpertTarget target, DateTimeOffset deadline, CancellationToken cancellationToken) =>
        throw new NotSupportedException();
}
