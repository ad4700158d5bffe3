namespace MoEMesh.Tensors.Layers;

/// <summary>Stateless training entry points over <see cref="ILayer"/>.</summary>
public static class LayerExtensions
{
    /// <summary>
    /// Backward from the input alone: recomputes the forward pass on a fresh tape, then runs backward.
    /// Parameter gradients accumulate; the input gradient is returned.
    /// </summary>
    public static Tensor Backward(this ILayer layer, Tensor input, Tensor outputGradient)
    {
        using var tape = new ActivationTape();
        using (var output = layer.Forward(input, tape))
        {
            outputGradient.RequireShape(output.Shape, $"output gradient of {layer}");
        }
        return layer.Backward(outputGradient, tape);
    }

    /// <summary>Clears every parameter gradient of <paramref name="layer"/>.</summary>
    public static void ZeroGradients(this ILayer layer)
    {
        foreach (var p in layer.Parameters) p.ZeroGradient();
    }
}
