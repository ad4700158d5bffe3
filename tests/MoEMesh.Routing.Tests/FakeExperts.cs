using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Invocation;
using MoEMesh.Tensors;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing.Tests;

/// <summary>How a fake expert behaves.</summary>
internal sealed record FakeBehaviour(float Scale = 1f, TimeSpan Delay = default, CallOutcome Fail = CallOutcome.Ok, bool NaN = false,
    TimeSpan BackwardDelay = default, CallOutcome BackwardFail = CallOutcome.Ok);

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

    public List<(string Host, string Uid, int Rows)> BackwardCalls { get; } = [];

    /// <summary>Backward calls that asked for the input gradient only (a frozen expert).</summary>
    public int FrozenBackwardCalls { get; private set; }

    public async Task<ExpertCallResult<Tensor>> ForwardAsync(ExpertTarget target, Tensor input, Compression compression, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var key = (target.Host.Address.Host, target.Uid.Value);
        lock (Calls) Calls.Add((key.Host, key.Value, input.Rows));
        var behaviour = _behaviours.GetValueOrDefault(key) ?? new FakeBehaviour();
        if (await WaitAsync(key, behaviour.Delay, deadline, cancellationToken) is { } late) return late;
        if (behaviour.Fail != CallOutcome.Ok) return ExpertCallResult<Tensor>.Failed(behaviour.Fail, $"{key} fails");
        return ExpertCallResult<Tensor>.Answer(Scaled(input, behaviour.NaN ? float.NaN : behaviour.Scale));
    }

    /// <summary>y = Scale · x, so dL/dx = Scale · dL/dy.</summary>
    public async Task<ExpertCallResult<Tensor>> BackwardAsync(ExpertTarget target, Tensor input, Tensor outputGradient, bool frozen, Compression compression, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var key = (target.Host.Address.Host, target.Uid.Value);
        lock (Calls)
        {
            BackwardCalls.Add((key.Host, key.Value, input.Rows));
            if (frozen) FrozenBackwardCalls++;
        }
        var behaviour = _behaviours.GetValueOrDefault(key) ?? new FakeBehaviour();
        if (await WaitAsync(key, behaviour.BackwardDelay, deadline, cancellationToken) is { } late) return late;
        if (behaviour.BackwardFail != CallOutcome.Ok) return ExpertCallResult<Tensor>.Failed(behaviour.BackwardFail, $"{key} fails backward");
        return ExpertCallResult<Tensor>.Answer(Scaled(outputGradient, behaviour.Scale));
    }

    private async Task<ExpertCallResult<Tensor>?> WaitAsync((string Host, string Uid) key, TimeSpan delay, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        if (delay <= TimeSpan.Zero) return null;
        var wait = delay < deadline - time.GetUtcNow() ? delay : deadline - time.GetUtcNow();
        try
        {
            await Task.Delay(wait, time, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            lock (Calls) Cancelled.Add(key);
            throw;
        }
        return time.GetUtcNow() >= deadline ? ExpertCallResult<Tensor>.Failed(CallOutcome.Timeout, "no answer by the deadline") : null;
    }

    private static Tensor Scaled(Tensor tensor, float scale)
    {
        var output = Tensor.FromSpan(tensor.Span, tensor.Shape);
        for (int i = 0; i < output.Length; i++) output.Span[i] *= scale;
        return output;
    }

    public Task<ExpertCallResult<ExpertInfo>> InfoAsync(ExpertTarget target, DateTimeOffset deadline, CancellationToken cancellationToken) =>
        throw new NotSupportedException();
}
