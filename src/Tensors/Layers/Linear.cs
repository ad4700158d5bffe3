using MoEMesh.Tensors.Gemm;

namespace MoEMesh.Tensors.Layers;

/// <summary>
/// y = x·Wᵀ + b with W stored [out, in] as PyTorch stores it, so checkpoints map one-to-one.
/// Initialised as PyTorch's default: W and b uniform in ±1/√in.
/// </summary>
public sealed class Linear : ILayer
{
    private readonly GemmBackend _gemm;

    /// <summary>Creates the layer.</summary>
    /// <param name="inFeatures">Input width.</param>
    /// <param name="outFeatures">Output width.</param>
    /// <param name="random">Source of the initial weights.</param>
    /// <param name="name">Parameter name prefix ("ffn.w1" gives "ffn.w1.weight" and "ffn.w1.bias").</param>
    /// <param name="bias">Whether the layer has a bias.</param>
    /// <param name="gemm">GEMM backend; the process default when null.</param>
    public Linear(int inFeatures, int outFeatures, SeededRandom random, string name = "linear", bool bias = true, GemmBackend? gemm = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inFeatures, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(outFeatures, 1);
        _gemm = gemm ?? Gemm.Gemm.Default;
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        float bound = 1f / MathF.Sqrt(inFeatures);
        var weight = Tensor.Uninitialized([outFeatures, inFeatures]);
        random.FillUniform(weight.Span, -bound, bound);
        Weight = new Parameter(name + ".weight", weight);
        if (bias)
        {
            var b = Tensor.Uninitialized([outFeatures]);
            random.FillUniform(b.Span, -bound, bound);
            Bias = new Parameter(name + ".bias", b);
        }
        Parameters = Bias is null ? [Weight] : [Weight, Bias];
    }

    /// <summary>Input width.</summary>
    public int InFeatures { get; }

    /// <summary>Output width.</summary>
    public int OutFeatures { get; }

    /// <summary>Weight [out, in].</summary>
    public Parameter Weight { get; }

    /// <summary>Bias [out], or null.</summary>
    public Parameter? Bias { get; }

    /// <inheritdoc />
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <inheritdoc />
    public Tensor Forward(Tensor input, ActivationTape? tape = null)
    {
        input.RequireShape([input.Rows, InFeatures], $"input of {this}");
        var output = Tensor.Uninitialized([input.Rows, OutFeatures]);
        if (Bias is not null)
            for (int r = 0; r < input.Rows; r++) Bias.Value.Span.CopyTo(output.Row(r));
        _gemm.MatMul(input, false, Weight.Value, true, output, beta: Bias is null ? 0f : 1f);
        tape?.Push(input);
        return output;
    }

    /// <inheritdoc />
    public Tensor Backward(Tensor outputGradient, ActivationTape tape)
    {
        var input = tape.Pop();
        outputGradient.RequireShape([input.Rows, OutFeatures], $"output gradient of {this}");
        var inputGradient = Tensor.Uninitialized(input.Shape);
        _gemm.MatMul(outputGradient, false, Weight.Value, false, inputGradient);
        _gemm.MatMul(outputGradient, true, input, false, Weight.Gradient, beta: 1f);
        if (Bias is not null)
        {
            var biasGradient = Bias.Gradient.Span;
            for (int r = 0; r < outputGradient.Rows; r++) Functions.Add(biasGradient, outputGradient.Row(r), biasGradient);
        }
        return inputGradient;
    }

    /// <inheritdoc />
    public override string ToString() => $"Linear({InFeatures}, {OutFeatures})";
}
