namespace MoEMesh.Tensors.Layers;

/// <summary>A parameter-free layer applied element by element; backward needs only the input.</summary>
public abstract class ElementwiseLayer : ILayer
{
    /// <inheritdoc />
    public IReadOnlyList<Parameter> Parameters => [];

    /// <inheritdoc />
    public Tensor Forward(Tensor input, ActivationTape? tape = null)
    {
        var output = Tensor.Uninitialized(input.Shape);
        Apply(input.Span, output.Span);
        tape?.Push(input);
        return output;
    }

    /// <inheritdoc />
    public Tensor Backward(Tensor outputGradient, ActivationTape tape)
    {
        var input = tape.Pop();
        outputGradient.RequireShape(input.Shape, $"output gradient of {this}");
        var inputGradient = Tensor.Uninitialized(input.Shape);
        ApplyBackward(input.Span, outputGradient.Span, inputGradient.Span);
        return inputGradient;
    }

    /// <summary>The function.</summary>
    protected abstract void Apply(ReadOnlySpan<float> input, Span<float> output);

    /// <summary>inputGradient = f'(input) · outputGradient.</summary>
    protected abstract void ApplyBackward(ReadOnlySpan<float> input, ReadOnlySpan<float> outputGradient, Span<float> inputGradient);
}

/// <summary>GELU, tanh approximation (as in BERT, GPT-2 and Hivemind's ffn expert).</summary>
public sealed class Gelu : ElementwiseLayer
{
    /// <inheritdoc />
    protected override void Apply(ReadOnlySpan<float> input, Span<float> output) => Functions.Gelu(input, output);

    /// <inheritdoc />
    protected override void ApplyBackward(ReadOnlySpan<float> input, ReadOnlySpan<float> outputGradient, Span<float> inputGradient) =>
        Functions.GeluBackward(input, outputGradient, inputGradient);

    /// <inheritdoc />
    public override string ToString() => "Gelu";
}

/// <summary>max(x, 0).</summary>
public sealed class Relu : ElementwiseLayer
{
    /// <inheritdoc />
    protected override void Apply(ReadOnlySpan<float> input, Span<float> output) => Functions.Relu(input, output);

    /// <inheritdoc />
    protected override void ApplyBackward(ReadOnlySpan<float> input, ReadOnlySpan<float> outputGradient, Span<float> inputGradient) =>
        Functions.ReluBackward(input, outputGradient, inputGradient);

    /// <inheritdoc />
    public override string ToString() => "Relu";
}
