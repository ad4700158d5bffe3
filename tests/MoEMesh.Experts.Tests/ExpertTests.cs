using MoEMesh.Tensors;
using MoEMesh.Testing;

namespace MoEMesh.Experts.Tests;

public class ExpertTests
{
    private static readonly ExpertRegistry Registry = ExpertRegistry.CreateDefault();

    [Theory]
    [InlineData("ffn")]
    [InlineData("mlp")]
    [InlineData("identity")]
    public void BuiltInExpert_Backward_MatchesFiniteDifferences(string type)
    {
        var expert = Registry.Create(new ExpertSpec(type, 6, InnerDim: 10, Seed: 3));
        using var input = GradientCheck.Random([4, 6], 1);
        DifferentiableCheck.Run(expert.Forward, expert.Backward, expert.Parameters, input);
    }

    [Fact]
    public void Ffn_Forward_EqualsLayerNormOfResidualGeluFormula()
    {
        var expert = (LayerExpert)Registry.Create(new ExpertSpec("ffn", 4, Seed: 9));
        using var input = GradientCheck.Random([2, 4], 2);
        using var output = expert.Forward(input);
        var p = expert.Parameters.ToDictionary(x => x.Name, x => x.Value);
        Assert.Equal(["ffn.w1.weight", "ffn.w1.bias", "ffn.w2.weight", "ffn.w2.bias", "ffn.norm.weight", "ffn.norm.bias"], expert.Parameters.Select(x => x.Name));
        Assert.Equal(new TensorShape(16, 4), p["ffn.w1.weight"].Shape);
        for (int r = 0; r < 2; r++)
        {
            var x = input.Row(r).ToArray().Select(v => (double)v).ToArray();
            var hidden = Enumerable.Range(0, 16).Select(j =>
            {
                double pre = p["ffn.w1.bias"].Span[j] + Enumerable.Range(0, 4).Sum(i => p["ffn.w1.weight"][j, i] * x[i]);
                return 0.5 * pre * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (pre + 0.044715 * pre * pre * pre)));
            }).ToArray();
            var z = Enumerable.Range(0, 4).Select(i =>
                x[i] + p["ffn.w2.bias"].Span[i] + Enumerable.Range(0, 16).Sum(j => p["ffn.w2.weight"][i, j] * hidden[j])).ToArray();
            double mean = z.Average(), variance = z.Select(v => (v - mean) * (v - mean)).Average();
            for (int i = 0; i < 4; i++)
                Assert.Equal((z[i] - mean) / Math.Sqrt(variance + 1e-5), output[r, i], 4);
        }
    }

    [Fact]
    public void SameSpec_BuildsIdenticalWeights_OtherSeedDoesNot()
    {
        var a = Registry.Create(new ExpertSpec("ffn", 8, Seed: 1));
        var b = Registry.Create(new ExpertSpec("ffn", 8, Seed: 1));
        var c = Registry.Create(new ExpertSpec("ffn", 8, Seed: 2));
        Assert.Equal(a.Parameters[0].Value.ToArray(), b.Parameters[0].Value.ToArray());
        Assert.NotEqual(a.Parameters[0].Value.ToArray(), c.Parameters[0].Value.ToArray());
    }

    [Fact]
    public void Registry_UnknownType_ListsKnownTypes()
    {
        var e = Assert.Throws<ArgumentException>(() => Registry.Create(new ExpertSpec("moe", 8)));
        Assert.Contains("'moe'", e.Message);
        Assert.Contains("ffn, identity, mlp", e.Message);
    }

    [Fact]
    public void Registry_CustomType_IsCreatedByName()
    {
        var registry = ExpertRegistry.CreateDefault();
        registry.Register("double", spec => new RecordingExpert(spec.HiddenDim, "double"));
        Assert.IsType<RecordingExpert>(registry.Create(new ExpertSpec("double", 3)));
        Assert.Throws<ArgumentException>(() => registry.Register("ffn", BuiltInExperts.Ffn));
    }

    [Fact]
    public void Expert_WrongInputShape_NamesExpectedAndGot()
    {
        var expert = Registry.Create(new ExpertSpec("ffn", 8));
        using var input = Tensor.Zeros(2, 5);
        var e = Assert.Throws<ArgumentException>(() => expert.Forward(input));
        Assert.Contains("[batch, 8]", e.Message);
        Assert.Contains("[2, 5]", e.Message);
    }
}
