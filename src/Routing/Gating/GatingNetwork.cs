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

    /// <summary>Creates a gate for <paramref name="grid"/> over inputs of width <paramref name="inputDim"/>, seeded.</summary>
    public GatingNetwork(ExpertGrid grid, int inputDim, ulong seed)
    {
        var random = new SeededRandom(seed);
        Grid = grid;
        _dimensions = grid.Sizes.Select((size, d) => new Linear(inputDim, size, random, $"gate.{d}")).ToArray();
        Parameters = _dimensions.SelectMany(l => l.Parameters).ToArray();
    }

    /// <summary>The grid it scores.</summary>
    public ExpertGrid Grid { get; }

    /// <summary>All trainable parameters.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Per dimension, scores [samples, size of that dimension]; the caller owns them.</summary>
    public Tensor[] Forward(Tensor input) => _dimensions.Select(l => l.Forward(input)).ToArray();

    /// <summary>Accumulates parameter gradients for the score gradients and returns dL/d(input).</summary>
    public Tensor Backward(Tensor input, IReadOnlyList<Tensor> scoreGradients)
    {
        Tensor? total = null;
        for (int d = 0; d < _dimensions.Length; d++)
        {
            using var tape = new ActivationTape();
            tape.Push(input);
            var part = _dimensions[d].Backward(scoreGradients[d], tape);
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
