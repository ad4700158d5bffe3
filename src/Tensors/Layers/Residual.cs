namespace MoEMesh.Tensors.Layers;

/// <summary>y = x + f(x); the input gradient is g + f'(x)ᵀg.</summary>
public sealed class Residual : ILayer
{
    /// <summary>Wraps <paramref name="inner"/>, which must keep the shape of its input.</summary>
    public Residual(ILayer inner)
    {
        Inner = inner;
    }

    /// <summary>The residual branch f.</summary>
    public ILayer Inner { get; }

    /// <inheritdoc />
    public IReadOnlyList<Parameter> Parameters => Inner.Parameters;

    /// <inheritdoc />
    public Tensor Forward(Tensor input, ActivationTape? tape = null)
    {
        var output = Inner.Forward(input, tape);
        output.RequireShape(input.Shape, $"output of the residual branch {Inner}");
        Functions.Add(output.Span, input.Span, output.Span);
        return output;
    }

    /// <inheritdoc />
    public Tensor Backward(Tensor outputGradient, ActivationTape tape)
    {
        var inputGradient = Inner.Backward(outputGradient, tape);
        Functions.Add(inputGradient.Span, outputGradient.Span, inputGradient.Span);
        return inputGradient;
    }

    /// <inheritdoc />
    public override string ToString() => $"Residual({Inner})";
}
