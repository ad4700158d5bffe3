using MoEMesh.Node.Cli;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Tests;

/// <summary>The evaluation split: seeded, stratified by label, every example in exactly one part.</summary>
public sealed class EvalSplitTests
{
    private static readonly Example[] Data = Enumerable.Range(0, 100).Select(i => new Example($"text {i}", i % 10 == 0 ? "rare" : i < 60 ? "a" : "b"))
        .Append(new Example("alone", "single")).ToArray();

    [Fact]
    public void Split_TakesTheShareOfEachLabel_AndKeepsEveryExampleOnce()
    {
        var (train, eval) = EvalSplit.Of(Data, 0.2, seed: 3);
        Assert.Equal(Data.Length, train.Count + eval.Count);
        Assert.Equal(Data.Select(e => e.Text).Order(), train.Concat(eval).Select(e => e.Text).Order());
        foreach (var group in Data.GroupBy(e => e.Label).Where(g => g.Count() > 1))
            Assert.Equal((int)Math.Round(0.2 * group.Count()), eval.Count(e => e.Label == group.Key));
        // A label seen once stays in training, where the model can learn it.
        Assert.DoesNotContain(eval, e => e.Label == "single");
    }

    [Fact]
    public void Split_IsTheSameForTheSameSeed_AndOtherForAnother()
    {
        var once = EvalSplit.Of(Data, 0.2, seed: 3).Eval.Select(e => e.Text).ToArray();
        Assert.Equal(once, EvalSplit.Of(Data, 0.2, seed: 3).Eval.Select(e => e.Text));
        Assert.NotEqual(once, EvalSplit.Of(Data, 0.2, seed: 4).Eval.Select(e => e.Text));
    }
}
