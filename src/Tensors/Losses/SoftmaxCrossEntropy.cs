using System.Numerics.Tensors;

namespace MoEMesh.Tensors.Losses;

/// <summary>
/// Mean softmax cross-entropy over a batch of logits [rows, classes] with integer labels, with optional
/// label smoothing ε: the target is (1 − ε) on the label plus ε/classes everywhere.
/// </summary>
public static class SoftmaxCrossEntropy
{
    /// <summary>Computes the loss and d loss / d logits.</summary>
    /// <exception cref="ArgumentException">Label count or a label value does not fit the logits, or ε is outside [0, 1).</exception>
    public static LossResult Compute(Tensor logits, ReadOnlySpan<int> labels, float labelSmoothing = 0f)
    {
        if (!(labelSmoothing >= 0f && labelSmoothing < 1f))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), $"Label smoothing must be in [0, 1); got {labelSmoothing}.");
        int rows = logits.Rows, classes = logits.RowLength;
        if (labels.Length != rows)
            throw new ArgumentException($"{labels.Length} labels for {rows} rows of logits.", nameof(labels));
        var gradient = Tensor.Uninitialized(logits.Shape);
        double total = 0;
        float offTarget = labelSmoothing / classes;
        float onTarget = 1f - labelSmoothing + offTarget;
        for (int r = 0; r < rows; r++)
        {
            int label = labels[r];
            if ((uint)label >= (uint)classes)
                throw new ArgumentException($"Label {label} of row {r} is outside [0, {classes}).", nameof(labels));
            var logProbabilities = gradient.Row(r);
            Functions.LogSoftmaxRows(logits.Row(r), classes, logProbabilities);
            // loss = −Σ q·log p, with q = offTarget everywhere and onTarget at the label.
            total -= offTarget * TensorPrimitives.Sum(logProbabilities) + (onTarget - offTarget) * logProbabilities[label];
            // d/dlogits = (p − q) / rows
            TensorPrimitives.Exp(logProbabilities, logProbabilities);
            TensorPrimitives.Subtract(logProbabilities, offTarget, logProbabilities);
            logProbabilities[label] -= onTarget - offTarget;
            TensorPrimitives.Multiply(logProbabilities, 1f / rows, logProbabilities);
        }
        return new LossResult((float)(total / rows), gradient);
    }
}
