using System.Numerics.Tensors;

namespace MoEMesh.Tensors.Optimizers;

/// <summary>
/// Adam, and AdamW when <c>decoupledWeightDecay</c> is set (Loshchilov and Hutter: the decay shrinks
/// the weights directly instead of entering the moments). Row-sparse parameters get the "lazy" update
/// of PyTorch's SparseAdam: only rows seen in the batch move, with the global step's bias correction.
/// </summary>
public sealed class Adam : Optimizer
{
    private const string FirstMoment = "exp_avg";
    private const string SecondMoment = "exp_avg_sq";
    private const int Chunk = 2048;

    /// <summary>Creates the optimizer.</summary>
    public Adam(IEnumerable<Parameter> parameters, LearningRateSchedule schedule, float beta1 = 0.9f, float beta2 = 0.999f,
        float epsilon = 1e-8f, float weightDecay = 0f, bool decoupledWeightDecay = false)
        : base(parameters, schedule, [FirstMoment, SecondMoment])
    {
        if (!(beta1 >= 0f && beta1 < 1f)) throw new ArgumentOutOfRangeException(nameof(beta1), $"beta1 must be in [0, 1); got {beta1}.");
        if (!(beta2 >= 0f && beta2 < 1f)) throw new ArgumentOutOfRangeException(nameof(beta2), $"beta2 must be in [0, 1); got {beta2}.");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(epsilon);
        ArgumentOutOfRangeException.ThrowIfNegative(weightDecay);
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
        WeightDecay = weightDecay;
        Decoupled = decoupledWeightDecay;
    }

    /// <inheritdoc />
    public override string Name => Decoupled ? "adamw" : "adam";

    /// <summary>First-moment decay.</summary>
    public float Beta1 { get; }

    /// <summary>Second-moment decay.</summary>
    public float Beta2 { get; }

    /// <summary>Denominator epsilon.</summary>
    public float Epsilon { get; }

    /// <summary>Weight decay coefficient.</summary>
    public float WeightDecay { get; }

    /// <summary>Whether weight decay is decoupled (AdamW).</summary>
    public bool Decoupled { get; }

    /// <inheritdoc />
    protected override void UpdateSlice(Parameter parameter, int start, int length, float rate, long step)
    {
        float correction1 = 1f - MathF.Pow(Beta1, step);
        float correction2 = 1f - MathF.Pow(Beta2, step);
        float stepSize = rate / correction1;
        float rootCorrection2 = MathF.Sqrt(correction2);
        Span<float> scratch = stackalloc float[2 * Chunk];
        for (int offset = 0; offset < length; offset += Chunk)
        {
            int n = Math.Min(Chunk, length - offset);
            var w = parameter.Value.Span.Slice(start + offset, n);
            var m = StateSlice(parameter, FirstMoment, start + offset, n);
            var v = StateSlice(parameter, SecondMoment, start + offset, n);
            var g = scratch[..n];
            var denominator = scratch.Slice(Chunk, n);
            parameter.Gradient.Span.Slice(start + offset, n).CopyTo(g);
            if (Decoupled) TensorPrimitives.Multiply(w, 1f - rate * WeightDecay, w);
            else if (WeightDecay > 0f) TensorPrimitives.MultiplyAdd(w, WeightDecay, g, g);
            // m = β1·m + (1 − β1)·g ; v = β2·v + (1 − β2)·g²
            TensorPrimitives.Multiply(m, Beta1, m);
            TensorPrimitives.MultiplyAdd(g, 1f - Beta1, m, m);
            TensorPrimitives.Multiply(g, g, denominator);
            TensorPrimitives.Multiply(v, Beta2, v);
            TensorPrimitives.MultiplyAdd(denominator, 1f - Beta2, v, v);
            // w −= lr/c1 · m / (√v/√c2 + ε)
            TensorPrimitives.Sqrt(v, denominator);
            TensorPrimitives.Multiply(denominator, 1f / rootCorrection2, denominator);
            TensorPrimitives.Add(denominator, Epsilon, denominator);
            TensorPrimitives.Divide(m, denominator, denominator);
            TensorPrimitives.MultiplyAdd(denominator, -stepSize, w, w);
        }
    }
}
