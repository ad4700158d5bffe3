using MoEMesh.Tensors;
using MoEMesh.Tensors.Layers;

namespace MoEMesh.Experts;

/// <summary>An expert made of a layer network over [rows, features] batches.</summary>
public sealed class LayerExpert : IExpert
{
    private readonly string _description;

    /// <summary>Creates the expert.</summary>
    /// <param name="network">The layers.</param>
    /// <param name="schema">Per-sample shapes.</param>
    /// <param name="description">Short description for messages ("ffn(d=1024, hidden=4096)").</param>
    public LayerExpert(ILayer network, ExpertSchema schema, string description)
    {
        Network = network;
        Schema = schema;
        _description = description;
    }

    /// <summary>The layers.</summary>
    public ILayer Network { get; }

    /// <inheritdoc />
    public ExpertSchema Schema { get; }

    /// <inheritdoc />
    public IReadOnlyList<Parameter> Parameters => Network.Parameters;

    /// <inheritdoc />
    public Tensor Forward(Tensor input)
    {
        Schema.RequireInput(input, _description);
        return Network.Forward(input);
    }

    /// <inheritdoc />
    public Tensor Backward(Tensor input, Tensor outputGradient)
    {
        Schema.RequireInput(input, _description);
        Schema.RequireOutputGradient(outputGradient, input.Rows, _description);
        return Network.Backward(input, outputGradient);
    }

    /// <inheritdoc />
    public override string ToString() => _description;
}
