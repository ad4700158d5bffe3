using System.Numerics.Tensors;

namespace MoEMesh.Tensors.Optimizers;

/// <summary>
/// Stochastic gradient descent with optional momentum (v = μ·v + g; w −= lr·v, or with Nesterov
/// w −= lr·(g + μ·v)) and L2 weight decay added to the gradient, as PyTorch's SGD.
/// </summary>
public sealed class Sgd : Optimizer
{
    private const string MomentumSlot = "momentum";
    private const int Chunk = 2048;

    /// <summary>Creates the optimizer.</summary>
    public Sgd(IEnumerable<Parameter> parameters, LearningRateSchedule schedule, float momentum = 0f, float weightDecay = 0f, bool nesterov = false)
        : base(parameters, schedule, momentum > 0f ? [MomentumSlot] : [])
    {
        if (!(momentum >= 0f && momentum < 1f)) throw new ArgumentOutOfRangeException(nameof(momentum), $"Momentum must be in [0, 1); got {momentum}.");
        ArgumentOutOfRangeException.ThrowIfNegative(weightDecay);
        Momentum = momentum;
        WeightDecay = weightDecay;
        Nesterov = nesterov;
    }

    /// <inheritdoc />
    public override string Name => "sgd";

    /// <summary>μ.</summary>
    public float Momentum { get; }

    /// <summary>L2 coefficient.</summary>
    public float WeightDecay { get; }

    /// <summary>Whether the Nesterov form is used.</summary>
    public bool Nesterov { get; }

    /// <inheritdoc />
    protected override void UpdateSlice(Parameter parameter, int start, int length, float rate, long step)
    {
        Span<float> effective = stackalloc float[Chunk];
        for (int offset = 0; offset < length; offset += Chunk)
        {
            int n = Math.Min(Chunk, length - offset);
            var w = parameter.Value.Span.Slice(start + offset, n);
            var d = effective[..n];
            TensorPrimitives.MultiplyAdd(w, WeightDecay, parameter.Gradient.Span.Slice(start + offset, n), d);
            if (Momentum > 0f)
            {
                var v = StateSlice(parameter, MomentumSlot, start + offset, n);
                TensorPrimitives.MultiplyAdd(v, Momentum, d, v);
                if (Nesterov) TensorPrimitives.MultiplyAdd(v, Momentum, d, d);
                else v.CopyTo(d);
            }
            TensorPrimitives.MultiplyAdd(d, -rate, w, w);
        }
    }
}
