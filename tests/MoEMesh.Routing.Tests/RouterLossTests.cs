using MoEMesh.Protocol.Addressing;
using MoEMesh.Routing.Gating;
using MoEMesh.Tensors;
using MoEMesh.Testing;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing.Tests;

public sealed class RouterLossTests
{
    private static readonly int[][][] Dispatched = [[[0, 1], [2, 1]], [[1, 1]], [[0, 0], [2, 2]]];

    private static Tensor[] Scores() => [GradientCheck.Random(new TensorShape(3, 3), 1), GradientCheck.Random(new TensorShape(3, 3), 2)];

    [Theory]
    [InlineData(0.01f, 0f, 0f)]
    [InlineData(0f, 0.001f, 0f)]
    [InlineData(0f, 0f, 0.1f)]
    [InlineData(0.01f, 0.001f, 0.1f)]
    public void ScoreGradients_PassAFiniteDifferenceCheck(float alpha, float beta, float lambda)
    {
        var weights = new RouterLossWeights(alpha, beta, lambda);
        var scores = Scores();
        using var result = RouterLosses.Compute(scores, Dispatched, weights);
        for (int d = 0; d < scores.Length; d++)
        {
            var numeric = GradientCheck.Numeric(() =>
            {
                using var again = RouterLosses.Compute(scores, Dispatched, weights);
                return again.Total;
            }, scores[d].Span, 1e-2f);
            GradientCheck.AssertClose(result.ScoreGradients[d].Span, numeric, 2e-2, $"dim {d}");
        }
        foreach (var s in scores) s.Dispose();
    }

    [Fact]
    public void ZLoss_IsExactOverEveryGridSlot()
    {
        var scores = Scores();
        using var result = RouterLosses.Compute(scores, Dispatched, new RouterLossWeights(0f, 1f, 0f));
        // Brute force: log Σ over all 9 experts of exp(score0[c0] + score1[c1]), squared, mean over samples.
        double expected = 0;
        for (int s = 0; s < 3; s++)
        {
            double sum = 0;
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) sum += Math.Exp(scores[0].Row(s)[a] + scores[1].Row(s)[b]);
            expected += Math.Pow(Math.Log(sum), 2) / 3;
        }
        Assert.Equal(expected, result.ZLoss, 4);
        foreach (var s in scores) s.Dispose();
    }

    [Fact]
    public void LoadBalance_IsAlpha_WhenRoutingAndTrafficAreUniform()
    {
        using var flat = Tensor.Zeros(4, 4);
        int[][][] spread = [[[0]], [[1]], [[2]], [[3]]];
        using var result = RouterLosses.Compute([flat], spread, new RouterLossWeights(0.01f, 0f, 0f));
        Assert.Equal(0.01f, result.LoadBalance, 6);
    }

    [Fact]
    public void Utilisation_CountsExpertsUsed_AndTheAssignmentEntropy()
    {
        var a = ExpertUid.Parse("ffn.0");
        var b = ExpertUid.Parse("ffn.1");
        var even = Utilisation.Of([[a], [b]], expertsKnown: 4);
        Assert.Equal(2, even.ExpertsUsed);
        Assert.Equal(0.5, even.ShareUsed);
        Assert.Equal(Math.Log(2), even.AssignmentEntropy, 9);
        Assert.Equal(0, Utilisation.Of([[a], [a]], 4).AssignmentEntropy);
    }
}
