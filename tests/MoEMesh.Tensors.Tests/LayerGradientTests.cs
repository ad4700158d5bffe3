using MoEMesh.Tensors.Layers;
using MoEMesh.Testing;

namespace MoEMesh.Tensors.Tests;

public class LayerGradientTests
{
    private static void Check(ILayer layer, Tensor input, float epsilon = 1e-2f) =>
        DifferentiableCheck.Run(x => layer.Forward(x), layer.Backward, layer.Parameters, input, epsilon);

    [Fact]
    public void Linear_Backward_MatchesFiniteDifferences()
    {
        using var input = GradientCheck.Random([4, 5], 1);
        Check(new Linear(5, 3, new SeededRandom(7)), input);
    }

    [Fact]
    public void LinearWithoutBias_Backward_MatchesFiniteDifferences()
    {
        using var input = GradientCheck.Random([3, 4], 2);
        var layer = new Linear(4, 6, new SeededRandom(8), bias: false);
        Assert.Single(layer.Parameters);
        Check(layer, input);
    }

    [Fact]
    public void Gelu_Backward_MatchesFiniteDifferences()
    {
        using var input = GradientCheck.Random([3, 7], 3, scale: 2f);
        Check(new Gelu(), input);
    }

    [Fact]
    public void Relu_Backward_MatchesFiniteDifferences_AwayFromTheKink()
    {
        using var input = GradientCheck.Random([3, 7], 4);
        var span = input.Span;
        for (int i = 0; i < span.Length; i++) span[i] += span[i] >= 0 ? 0.2f : -0.2f;
        Check(new Relu(), input);
    }

    [Fact]
    public void LayerNorm_Backward_MatchesFiniteDifferences()
    {
        using var input = GradientCheck.Random([3, 6], 5, scale: 2f);
        var layer = new LayerNorm(6);
        new SeededRandom(11).FillNormal(layer.Gamma.Value.Span, 1f, 0.3f);
        new SeededRandom(12).FillNormal(layer.Beta.Value.Span, 0f, 0.3f);
        Check(layer, input);
    }

    [Fact]
    public void Dropout_Backward_MatchesFiniteDifferences_WithItsMask()
    {
        using var input = GradientCheck.Random([4, 8], 6);
        Check(new Dropout(0.5f) { MaskSeed = 42 }, input);
    }

    [Fact]
    public void Dropout_SameSeed_GivesSameMask_AndOtherSeedAnother()
    {
        using var input = Tensor.Zeros(64, 32);
        input.Span.Fill(1f);
        var dropout = new Dropout(0.25f) { MaskSeed = 5 };
        using var first = dropout.Forward(input);
        using var again = dropout.Forward(input);
        dropout.MaskSeed = 6;
        using var other = dropout.Forward(input);
        Assert.Equal(first.ToArray(), again.ToArray());
        Assert.NotEqual(first.ToArray(), other.ToArray());
        double kept = first.ToArray().Count(v => v != 0f) / (double)first.Length;
        Assert.InRange(kept, 0.70, 0.80);
        Assert.All(first.ToArray(), v => Assert.True(v == 0f || Math.Abs(v - 1f / 0.75f) < 1e-6));
    }

    [Fact]
    public void Dropout_NotTraining_IsIdentity()
    {
        using var input = GradientCheck.Random([2, 3], 7);
        using var output = new Dropout(0.9f) { Training = false }.Forward(input);
        Assert.Equal(input.ToArray(), output.ToArray());
    }

    [Fact]
    public void ResidualSequential_Backward_MatchesFiniteDifferences()
    {
        var random = new SeededRandom(9);
        var layer = new Sequential(
            new Residual(new Sequential(new Linear(4, 8, random, "a"), new Gelu(), new Linear(8, 4, random, "b"))),
            new LayerNorm(4));
        using var input = GradientCheck.Random([5, 4], 10);
        Check(layer, input);
    }

    [Fact]
    public void Backward_WithTapeFromForward_EqualsStatelessBackward()
    {
        var random = new SeededRandom(13);
        var layer = new Sequential(new Linear(3, 5, random), new Gelu(), new Linear(5, 2, random, "l2"));
        using var input = GradientCheck.Random([4, 3], 14);
        using var gradient = GradientCheck.Random([4, 2], 15);
        using var stateless = layer.Backward(input, gradient);
        using var tape = new ActivationTape();
        using (layer.Forward(input, tape)) { }
        using var taped = layer.Backward(gradient, tape);
        Assert.Equal(stateless.ToArray(), taped.ToArray());
        Assert.Equal(0, tape.Count);
    }

    [Fact]
    public void Linear_WrongInputWidth_ThrowsNamingExpectedAndGot()
    {
        using var input = Tensor.Zeros(2, 4);
        var e = Assert.Throws<ArgumentException>(() => new Linear(5, 3, new SeededRandom(1)).Forward(input));
        Assert.Contains("[2, 5]", e.Message);
        Assert.Contains("[2, 4]", e.Message);
    }

    [Fact]
    public void EmbeddingBag_Backward_MatchesFiniteDifferences_AndTouchesOnlyUsedRows()
    {
        foreach (var mode in new[] { BagMode.Sum, BagMode.Mean })
        {
            var bag = new EmbeddingBag(10, 4, new SeededRandom(1), mode);
            var features = new SparseFeatures([1, 3, 3, 7, 2], [0, 3, 3, 5], [1f, 0.5f, 2f, 1f, -1f]);
            using var projection = GradientCheck.Random([3, 4], 2);
            double Loss()
            {
                using var output = bag.Forward(features);
                return GradientCheck.Dot(output.Span, projection.Span);
            }

            bag.Table.ZeroGradient();
            bag.Backward(features, projection);
            var numeric = GradientCheck.Numeric(Loss, bag.Table.Value.Span, 1e-2f);
            GradientCheck.AssertClose(bag.Table.Gradient.Span, numeric, 2e-3, $"{mode} table gradient");
            Assert.Equal([1, 2, 3, 7], bag.Table.TouchedRows!.ToArray());
            bag.Table.ZeroGradient();
            Assert.All(bag.Table.Gradient.ToArray(), v => Assert.Equal(0f, v));
            Assert.Empty(bag.Table.TouchedRows!);
        }
    }

    [Fact]
    public void EmbeddingBag_EmptyBag_GivesZeroRow()
    {
        var bag = new EmbeddingBag(4, 3, new SeededRandom(1));
        using var output = bag.Forward(new SparseFeatures([2], [0, 0, 1]));
        Assert.Equal([0f, 0f, 0f], output.Row(0).ToArray());
        Assert.Equal(bag.Table.Value.Row(2).ToArray(), output.Row(1).ToArray());
    }

    [Fact]
    public void EmbeddingBag_IndexOutOfRange_ThrowsNamingIndexAndSample()
    {
        var bag = new EmbeddingBag(4, 3, new SeededRandom(1));
        var e = Assert.Throws<ArgumentException>(() => bag.Forward(new SparseFeatures([1, 9], [0, 1, 2])));
        Assert.Contains("9", e.Message);
        Assert.Contains("sample 1", e.Message);
    }

    [Fact]
    public void SparseFeatures_Hash_IsStableAndInRange()
    {
        var features = SparseFeatures.Hash([["user:42", "word:hello"], ["word:hello"]], 1000);
        Assert.Equal([0, 2, 3], features.Offsets);
        Assert.Equal(features.Indices[1], features.Indices[2]);
        Assert.All(features.Indices, i => Assert.InRange(i, 0, 999));
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c; fixed by definition, so every node agrees.
        Assert.Equal((int)(0xaf63dc4c8601ec8cUL % 1000UL), SparseFeatures.Bucket("a", 1000));
    }

    [Fact]
    public void SparseFeatures_BadOffsets_AreRejected()
    {
        Assert.Throws<ArgumentException>(() => new SparseFeatures([1, 2], [0, 2, 1]));
        Assert.Throws<ArgumentException>(() => new SparseFeatures([1, 2], [0, 1]));
    }
}
