namespace MoEMesh.Tensors.Layers;

/// <summary>
/// A differentiable layer on batches (first dimension = rows). Forward never returns its input, so
/// the caller owns every tensor a layer returns.
/// </summary>
public interface ILayer
{
    /// <summary>Trainable parameters, in a stable order.</summary>
    IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Computes the output; with a tape, also saves what <see cref="Backward"/> needs.</summary>
    Tensor Forward(Tensor input, ActivationTape? tape = null);

    /// <summary>
    /// Given the gradient of the loss with respect to the output of the forward pass recorded on
    /// <paramref name="tape"/>, accumulates parameter gradients and returns the input gradient.
    /// </summary>
    Tensor Backward(Tensor outputGradient, ActivationTape tape);
}
