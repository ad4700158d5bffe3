using System.Numerics.Tensors;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Routing.Invocation;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing.Calling;

/// <summary>
/// Backward across the network: each expert that answered forward receives, for its samples, the output
/// gradient scaled by that sample's weight for it; it returns the input gradient and steps its own
/// optimizer on its host. One deadline (BackwardTimeout); once every sample has BackwardKMin answers,
/// stragglers get GraceAfterKMin. A sample with fewer than BackwardKMin answers gets no input gradient and
/// is reported incomplete (its gradient would be biased towards the experts that happened to answer).
/// </summary>
public sealed partial class ExpertFanOut
{
    /// <summary>Runs the backward fan-out for a forward result and dL/d(output); <paramref name="frozen"/> experts give their input gradient without stepping.</summary>
    public async Task<BackwardResult> BackwardAsync(FanOutResult forward, Tensor outputGradient, bool frozen, CancellationToken cancellationToken)
    {
        int samples = forward.Used.Count;
        if (outputGradient.Shape != forward.Output.Shape)
            throw new ArgumentException($"The output gradient has shape {outputGradient.Shape}; the forward output has {forward.Output.Shape}.");
        var deadline = time.GetUtcNow() + options.BackwardTimeout;
        var kmin = forward.Used.Select(u => Math.Min(options.BackwardKMin, u.Count)).ToArray();
        var weights = forward.Used.Select(u => u.ToDictionary(e => new AnswerKey(e.Uid, e.Local), e => e.Weight)).ToArray();
        var calls = forward.Answers.Select(a =>
        {
            var grad = Tensor.Uninitialized(a.Value.Output.Shape);
            for (int i = 0; i < a.Value.Samples.Length; i++)
            {
                int s = a.Value.Samples[i];
                TensorPrimitives.Multiply(outputGradient.Row(s), weights[s].GetValueOrDefault(a.Key), grad.Row(i));
            }
            return (a.Value.Samples, (Func<CancellationToken, Task<FinishedCall<GradientAnswer>>>)(t => BackwardOneAsync(a.Key, a.Value, grad, frozen, deadline, t)));
        }).ToList();
        var outcomes = await CollectAsync(calls, kmin, options.BackwardTimeout, cancellationToken);

        // With no answer at all every sample chose only null experts, whose input shape is the output's.
        var inputGradient = Tensor.Zeros(forward.Answers.Values.FirstOrDefault()?.Input.Shape.WithRows(samples) ?? forward.Output.Shape);
        var answered = new int[samples];
        foreach (var outcome in outcomes)
        {
            if (outcome.Answer is not { } answer) continue;
            for (int i = 0; i < answer.Samples.Length; i++)
            {
                int s = answer.Samples[i];
                TensorPrimitives.Add(inputGradient.Row(s), answer.Gradient.Row(i), inputGradient.Row(s));
                answered[s]++;
            }
            answer.Dispose();
        }
        var incomplete = new bool[samples];
        for (int s = 0; s < samples; s++)
        {
            if (answered[s] >= kmin[s]) continue;
            incomplete[s] = true;
            inputGradient.Row(s).Clear();
        }
        var alignment = forward.Used.Select((used, s) => used.Select(e =>
        {
            var a = forward.Answers[new AnswerKey(e.Uid, e.Local)];
            return TensorPrimitives.Dot<float>(outputGradient.Row(s), a.Output.Row(a.RowOf(s)));
        }).ToArray()).ToArray();
        return new BackwardResult(inputGradient, alignment, incomplete, outcomes.Select(o => o.Trace).ToArray());
    }

    private async Task<FinishedCall<GradientAnswer>> BackwardOneAsync(AnswerKey key, ExpertAnswer answer, Tensor gradient, bool frozen, DateTimeOffset deadline, CancellationToken stragglers)
    {
        await Task.Yield();
        var invoker = key.Local ? local! : remote;
        long started = time.GetTimestamp();
        ExpertCallResult<Tensor> result;
        var host = key.Local ? (PeerId?)null : answer.Target.Host.PeerId!.Value;
        if (host is { } calling) health.Started(calling);
        try
        {
            result = await invoker.BackwardAsync(answer.Target, answer.Input, gradient, frozen, Compression, deadline, stragglers);
        }
        catch (OperationCanceledException) when (stragglers.IsCancellationRequested)
        {
            result = ExpertCallResult<Tensor>.Failed(CallOutcome.Timeout, "cut: the other experts had answered and the grace period ended");
        }
        finally
        {
            gradient.Dispose();
            if (host is { } ended) health.Ended(ended);
        }
        var elapsed = time.GetElapsedTime(started);
        if (result.IsOk && (result.Value!.Shape != answer.Input.Shape || !float.IsFinite(TensorPrimitives.MaxMagnitude<float>(result.Value.Span))))
        {
            var shape = result.Value.Shape;
            result.Value.Dispose();
            result = ExpertCallResult<Tensor>.Failed(CallOutcome.Rejected, $"the input gradient has shape {shape} or holds NaN or Inf; expected {answer.Input.Shape}");
        }
        if (host is { } called) health.Record(called, result.Outcome, elapsed, forward: false);
        var trace = new ExpertCallTrace(key.Uid, key.Local ? "local" : answer.Target.Host.PeerId!.Value.ToString(), result.Outcome, result.Error, elapsed, answer.Samples.Length, key.Local);
        return new FinishedCall<GradientAnswer>(answer.Samples, result.IsOk ? new GradientAnswer(answer.Samples, result.Value!) : null, trace);
    }
}
