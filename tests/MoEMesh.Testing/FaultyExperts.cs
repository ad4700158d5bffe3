using MoEMesh.Experts;
using MoEMesh.Tensors;

namespace MoEMesh.Testing;

/// <summary>An expert that throws on every call, as a broken contributor's expert would.</summary>
public sealed class ThrowingExpert(int dimension) : IExpert
{
    /// <inheritdoc />
    public ExpertSchema Schema { get; } = new([dimension], [dimension]);

    /// <inheritdoc />
    public IReadOnlyList<Parameter> Parameters => [];

    /// <inheritdoc />
    public Tensor Forward(Tensor input) => throw new InvalidOperationException("test expert failure in forward");

    /// <inheritdoc />
    public Tensor Backward(Tensor input, Tensor outputGradient) => throw new InvalidOperationException("test expert failure in backward");
}

/// <summary>An expert whose outputs and gradients are all NaN.</summary>
public sealed class NaNExpert(int dimension) : IExpert
{
    /// <inheritdoc />
    public ExpertSchema Schema { get; } = new([dimension], [dimension]);

    /// <inheritdoc />
    public IReadOnlyList<Parameter> Parameters => [];

    /// <inheritdoc />
    public Tensor Forward(Tensor input) => Filled(input.Shape);

    /// <inheritdoc />
    public Tensor Backward(Tensor input, Tensor outputGradient) => Filled(input.Shape);

    private static Tensor Filled(TensorShape shape)
    {
        var t = Tensor.Uninitialized(shape);
        t.Span.Fill(float.NaN);
        return t;
    }
}
