using MoEMesh.Tensors;

namespace MoEMesh.Experts;

/// <summary>Returns its input; no parameters. For wiring tests and as a cost-free placeholder.</summary>
public sealed class IdentityExpert : IExpert
{
    /// <summary>Creates an identity on rows of <paramref name="dimension"/> features.</summary>
    public IdentityExpert(int dimension)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        Schema = new ExpertSchema([dimension], [dimension]);
    }

    /// <inheritdoc />
    public ExpertSchema Schema { get; }

    /// <inheritdoc />
    public IReadOnlyList<Parameter> Parameters => [];

    /// <inheritdoc />
    public Tensor Forward(Tensor input)
    {
        Schema.RequireInput(input, "identity");
        return input.Clone();
    }

    /// <inheritdoc />
    public Tensor Backward(Tensor input, Tensor outputGradient)
    {
        Schema.RequireInput(input, "identity");
        Schema.RequireOutputGradient(outputGradient, input.Rows, "identity");
        return outputGradient.Clone();
    }

    /// <inheritdoc />
    public override string ToString() => $"identity(d={Schema.InputShape[0]})";
}
