using MoEMesh.Tensors.Losses;
using MoEMesh.Testing;

namespace MoEMesh.Tensors.Tests;

public class LossTests
{
    [Fact]
    public void SoftmaxCrossEntropy_MatchesDefinition()
    {
        using var logits = Tensor.FromArray([1f, 2f, 3f, 0f, 0f, 0f], [2, 3]);
        using var result = SoftmaxCrossEntropy.Compute(logits, [2, 0]);
        double row0 = -(3 - Math.Log(Math.Exp(1) + Math.Exp(2) + Math.Exp(3)));
        double row1 = Math.Log(3);
        Assert.Equal((row0 + row1) / 2, result.Value, 5);
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(0.1f)]
    public void SoftmaxCrossEntropy_Gradient_MatchesFiniteDifferences(float smoothing)
    {
        using var logits = GradientCheck.Random([3, 5], 1, scale: 2f);
        int[] labels = [4, 0, 2];
        using var analytic = SoftmaxCrossEntropy.Compute(logits, labels, smoothing);
        var numeric = GradientCheck.Numeric(() =>
        {
            using var r = SoftmaxCrossEntropy.Compute(logits, labels, smoothing);
            return r.Value;
        }, logits.Span, 1e-2f);
        GradientCheck.AssertClose(analytic.Gradient.Span, numeric, 2e-3, "logit gradient");
    }

    [Fact]
    public void SoftmaxCrossEntropy_LabelOutOfRange_NamesRowAndLabel()
    {
        using var logits = Tensor.Zeros(2, 3);
        var e = Assert.Throws<ArgumentException>(() => SoftmaxCrossEntropy.Compute(logits, [0, 3]));
        Assert.Contains("Label 3 of row 1", e.Message);
    }

    [Fact]
    public void MeanSquaredError_ValueAndGradient()
    {
        using var predictions = Tensor.FromArray([1f, 2f, 3f, 4f], [2, 2]);
        using var targets = Tensor.FromArray([1f, 0f, 3f, 1f], [2, 2]);
        using var result = MeanSquaredError.Compute(predictions, targets);
        Assert.Equal((0 + 4 + 0 + 9) / 4f, result.Value, 6);
        Assert.Equal([0f, 1f, 0f, 1.5f], result.Gradient.ToArray());
    }
}
