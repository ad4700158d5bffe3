namespace MoEMesh.Tensors.Losses;

/// <summary>A loss value and its gradient with respect to the predictions (owned by the caller).</summary>
/// <param name="Value">The loss, averaged as the loss defines.</param>
/// <param name="Gradient">d loss / d predictions, same shape as the predictions.</param>
public sealed record LossResult(float Value, Tensor Gradient) : IDisposable
{
    /// <summary>Returns the gradient's storage to the pool.</summary>
    public void Dispose() => Gradient.Dispose();
}
