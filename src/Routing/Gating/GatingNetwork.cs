using MoEMesh.Tensors;
using MoEMesh.Tensors.Layers;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing.Gating;

/// <summary>
/// The trainable gate: one linear map per grid dimension from the input to that dimension's coordinate
/// scores. An expert's logit is the sum of its coordinates' scores, so a grid of 32 × 32 × 32 experts
/// needs 96 scores per sample, not 32,768, and beam search can find the best ones without scoring all.
/// </summary>
public sealed class GatingNetwork
{
    private readonly Linear[] _dimensions;
    private readonly Linear? _null;

    /// <summary>
    /// Creates a gate for <paramref name="grid"/> over inputs of width <paramref name="inputDim"/>, seeded,
    /// with <paramref name="nullExperts"/> null experts (AdaMoE): each has a logit of its own, competes for
    /// the top-k like any expert, and when chosen adds nothing and costs no call, so a sample the gate
    /// finds easy uses fewer real experts. Its parameters are named under <paramref name="name"/>
    /// ("layers.1.gate" gives "layers.1.gate.0.weight" … and "layers.1.gate.null.weight"), so several
    /// gates in one model keep distinct names.
    /// </summary>
    public GatingNetwork(ExpertGrid grid, int inputDim, ulong seed, int nullExperts = 0, string name = "gate")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (nullExperts < 0) throw new ArgumentOutOfRangeException(nameof(nullExperts), $"Null experts must be zero or more; got {nullExperts}.");
        var random = new SeededRandom(seed);
        Grid = grid;
        InputDim = inputDim;
        NullExperts = nullExperts;
        _dimensions = grid.Sizes.Select((size, d) => new Linear(inputDim, size, random, $"{name}.{d}")).ToArray();
        _null = nullExperts > 0 ? new Linear(inputDim, nullExperts, random, name + ".null") : null;
        Parameters = _dimensions.Append(_null).OfType<Linear>().SelectMany(l => l.Parameters).ToArray();
    }

    /// <summary>The grid it scores.</summary>
    public ExpertGrid Grid { get; }

    /// <summary>Width of the inputs it scores.</summary>
    public int InputDim { get; }

    /// <summary>Null experts (none by default).</summary>
    public int NullExperts { get; }

    /// <summary>All trainable parameters.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Per dimension, scores [samples, size of that dimension]; the caller owns them.</summary>
    public Tensor[] Forward(Tensor input) => _dimensions.Select(l => l.Forward(input)).ToArray();

    /// <summary>The null experts' logits [samples, <see cref="NullExperts"/>], or null when there are none; the caller owns them.</summary>
    public Tensor? ForwardNull(Tensor input) => _null?.Forward(input);

    /// <summary>
    /// Accumulates parameter gradients for the score gradients (and the null experts' logit gradients,
    /// when there are null experts) and returns dL/d(input).
    /// </summary>
    public Tensor Backward(Tensor input, IReadOnlyList<Tensor> scoreGradients, Tensor? nullGradient = null)
    {
        if (scoreGradients.Count != _dimensions.Length)
            throw new ArgumentException($"The gate has {_dimensions.Length} dimensions; got {scoreGradients.Count} score gradients.");
        var parts = _dimensions.Select((layer, d) => (Layer: layer, Gradient: scoreGradients[d])).ToList();
        if (_null is not null && nullGradient is not null) parts.Add((_null, nullGradient));
        Tensor? total = null;
        foreach (var (layer, gradient) in parts)
        {
            using var tape = new ActivationTape();
            tape.Push(input);
            var part = layer.Backward(gradient, tape);
            if (total is null) total = part;
            else
            {
                Functions.Add(total.Span, part.Span, total.Span);
                part.Dispose();
            }
        }
        return total!;
    }

    /// <summary>Per sample, per dimension, the scores as arrays (what beam search takes).</summary>
    public static IReadOnlyList<float[]>[] PerSample(Tensor[] scores) =>
        Enumerable.Range(0, scores[0].Rows).Select(s => (IReadOnlyList<float[]>)scores.Select(d => d.Row(s).ToArray()).ToArray()).ToArray();
}
