namespace MoEMesh.Tensors.Layers;

/// <summary>Layer normalisation over the last dimension with a learned scale (ones) and shift (zeros).</summary>
public sealed class LayerNorm : ILayer
{
    /// <summary>Creates the layer.</summary>
    /// <param name="features">Width of each row.</param>
    /// <param name="name">Parameter name prefix.</param>
    /// <param name="epsilon">Added to the variance, 1e-5 as in PyTorch.</param>
    public LayerNorm(int features, string name = "norm", float epsilon = 1e-5f)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(features, 1);
        Features = features;
        Epsilon = epsilon;
        var gamma = Tensor.Uninitialized([features]);
        gamma.Span.Fill(1f);
        Gamma = new Parameter(name + ".weight", gamma);
        Beta = new Parameter(name + ".bias", Tensor.Zeros(features));
        Parameters = [Gamma, Beta];
    }

    /// <summary>Width of each row.</summary>
    public int Features { get; }

    /// <summary>Variance epsilon.</summary>
    public float Epsilon { get; }

    /// <summary>Scale.</summary>
    public Parameter Gamma { get; }

    /// <summary>Shift.</summary>
    public Parameter Beta { get; }

    /// <inheritdoc />
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <inheritdoc />
    public Tensor Forward(Tensor input, ActivationTape? tape = null)
    {
        input.RequireShape([input.Rows, Features], $"input of {this}");
        var output = Tensor.Uninitialized(input.Shape);
        Functions.LayerNormRows(input.Span, Features, Gamma.Value.Span, Beta.Value.Span, Epsilon, output.Span);
        tape?.Push(input);
        return output;
    }

    /// <inheritdoc />
    public Tensor Backward(Tensor outputGradient, ActivationTape tape)
    {
        var input = tape.Pop();
        outputGradient.RequireShape(input.Shape, $"output gradient of {this}");
        var inputGradient = Tensor.Uninitialized(input.Shape);
        Functions.LayerNormRowsBackward(input.Span, Features, Gamma.Value.Span, Epsilon, outputGradient.Span,
            inputGradient.Span, Gamma.Gradient.Span, Beta.Gradient.Span);
        return inputGradient;
    }

    /// <inheritdoc />
    public override string ToString() => $"LayerNorm({Features})";
}
