using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing.Calling;

/// <summary>What a backward fan-out produced.</summary>
public sealed class BackwardResult : IDisposable
{
    internal BackwardResult(Tensor inputGradient, float[][] alignment, bool[] incomplete, IReadOnlyList<ExpertCallTrace> trace)
    {
        InputGradient = inputGradient;
        Alignment = alignment;
        Incomplete = incomplete;
        Trace = trace;
    }

    /// <summary>
    /// dL/dx, [samples, ...input shape]: the sum over the experts that answered backward of their input
    /// gradients for the weighted output gradient. Zero for an <see cref="Incomplete"/> sample.
    /// </summary>
    public Tensor InputGradient { get; }

    /// <summary>
    /// Per sample, per used expert (in the order of <see cref="FanOutResult.Used"/>): ⟨dL/dy, y_expert⟩, from
    /// which the gate's gradient follows: for renormalised softmax weights w over the answering experts'
    /// logits, dL/dlogit_e = w_e (a_e − Σ_j w_j a_j).
    /// </summary>
    public IReadOnlyList<float[]> Alignment { get; }

    /// <summary>Per sample, whether fewer than BackwardKMin experts answered backward (its input gradient is then zero).</summary>
    public IReadOnlyList<bool> Incomplete { get; }

    /// <summary>Every backward call.</summary>
    public IReadOnlyList<ExpertCallTrace> Trace { get; }

    /// <inheritdoc />
    public void Dispose() => InputGradient.Dispose();
}

/// <summary>One expert's input gradient for the samples (rows) it carried.</summary>
internal sealed record GradientAnswer(int[] Samples, Tensor Gradient) : IDisposable
{
    public void Dispose() => Gradient.Dispose();
}
