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
    [InlineData(0.01f, 0f, 0f, 0f)]
    [InlineData(0f, 0.001f, 0f, 0f)]
    [InlineData(0f, 0f, 0.1f, 0f)]
    [InlineData(0f, 0f, 0f, 0.1f)]
    [InlineData(0.01f, 0.001f, 0.1f, 0.1f)]
    public void ScoreGradients_PassAFiniteDifferenceCheck(float alpha, float beta, float lambda, float mu)
    {
        var weights = new RouterLossWeights(alpha, beta, lambda, mu);
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
        using var result = RouterLosses.Compute(scores, Dispatched, new RouterLossWeights(0f, 1f, 0f, 0f));
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
        using var result = RouterLosses.Compute([flat], spread, new RouterLossWeights(0.01f, 0f, 0f, 0f));
        Assert.Equal(0.01f, result.LoadBalance, 6);
    }

    [Fact]
    public void SampleEntropy_IsTheMeanEntropyOfEachSamplesRoutingOverTheWholeGrid_PerDimension()
    {
        var scores = Scores();
        using var result = RouterLosses.Compute(scores, Dispatched, new RouterLossWeights(0f, 0f, 0f, 1f));
        // Brute force: each sample's softmax over all 9 experts (score0[c0] + score1[c1]), its entropy, the mean over samples, over 2 dimensions.
        double expected = 0;
        for (int s = 0; s < 3; s++)
        {
            var logits = (from a in Enumerable.Range(0, 3) from b in Enumerable.Range(0, 3) select (double)scores[0].Row(s)[a] + scores[1].Row(s)[b]).ToArray();
            double max = logits.Max(), sum = logits.Sum(l => Math.Exp(l - max));
            expected += logits.Select(l => Math.Exp(l - max) / sum).Sum(p => -p * Math.Log(p)) / 3 / 2;
        }
        Assert.Equal(expected, result.SampleEntropy, 4);
        foreach (var s in scores) s.Dispose();
    }

    [Fact]
    public void TheTwoEntropies_PullOppositeWays()
    {
        // Every sample sure of the same coordinate: each sample's routing is confident, the batch's is not spread.
        using var peaked = Tensor.Zeros(4, 4);
        for (int s = 0; s < 4; s++) peaked.Row(s)[0] = 8f;
        using var flat = Tensor.Zeros(4, 4);
        int[][][] first = [[[0]], [[0]], [[0]], [[0]]];
        using var onPeaked = RouterLosses.Compute([peaked], first, new RouterLossWeights(0f, 0f, 1f, 1f));
        using var onFlat = RouterLosses.Compute([flat], first, new RouterLossWeights(0f, 0f, 1f, 1f));
        Assert.True(onPeaked.SampleEntropy < onFlat.SampleEntropy, "per-sample entropy is lowest for confident routing");
        Assert.True(onFlat.MarginalEntropy < onPeaked.MarginalEntropy, "the marginal term (−H) is lowest for spread routing");
        Assert.Equal(-Math.Log(4), onFlat.MarginalEntropy, 5);
        Assert.Equal(Math.Log(4), onFlat.SampleEntropy, 5);
    }

    [Fact]
    public void Utilisation_IsOverTheWholeGrid()
    {
        var uids = Enumerable.Range(0, 4).Select(i => ExpertUid.Parse($"ffn.{i}")).ToArray();
        // Two of four experts, evenly: half the grid used, and H = log 2 of log 4.
        var half = Utilisation.Of([[uids[0]], [uids[1]]], gridExperts: 4);
        Assert.Equal(2, half.ExpertsUsed);
        Assert.Equal(0.5, half.ShareUsed);
        Assert.Equal(Math.Log(2), half.AssignmentEntropy, 9);
        Assert.Equal(0.5, half.Evenness, 9);
        Assert.Equal(new Dictionary<string, int> { ["ffn.0"] = 1, ["ffn.1"] = 1 }, half.Load);
        // Collapse onto one expert reads 0, however many samples; every expert evenly reads 1.
        var collapsed = Utilisation.Of([[uids[0]], [uids[0]], [uids[0]]], 4);
        Assert.Equal(0, collapsed.Evenness);
        Assert.Equal(0.25, collapsed.ShareUsed);
        Assert.Equal(1, Utilisation.Of(uids.Select(u => new[] { u }), 4).Evenness, 9);
    }
}
