using System.Numerics.Tensors;

namespace MoEMesh.Tensors.Losses;

/// <summary>Mean over every element of (prediction − target)².</summary>
public static class MeanSquaredError
{
    /// <summary>Computes the loss and its gradient 2·(prediction − target)/n.</summary>
    public static LossResult Compute(Tensor predictions, Tensor targets)
    {
        targets.RequireShape(predictions.Shape, "targets of mean squared error");
        var gradient = Tensor.Uninitialized(predictions.Shape);
        TensorPrimitives.Subtract(predictions.Span, targets.Span, gradient.Span);
        int n = Math.Max(1, predictions.Length);
        float loss = TensorPrimitives.SumOfSquares(gradient.Span) / n;
        TensorPrimitives.Multiply(gradient.Span, 2f / n, gradient.Span);
        return new LossResult(loss, gradient);
    }
}
