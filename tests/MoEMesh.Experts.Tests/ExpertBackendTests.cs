using MoEMesh.Tensors;
using MoEMesh.Testing;

namespace MoEMesh.Experts.Tests;

public class ExpertBackendTests
{
    internal static ExpertBackend Create(string name = "ffn.0.0", ulong seed = 1, string optimizer = "adam") =>
        new(name, new ExpertSpec("ffn", 8, Seed: seed), BuiltInExperts.Ffn(new ExpertSpec("ffn", 8, Seed: seed)),
            new OptimizerOptions { Name = optimizer, LearningRate = 1e-2f, MaxGradNorm = 10f });

    [Fact]
    public void Backward_StepsTheOptimizer_AndCountsUpdates()
    {
        var backend = Create();
        var before = backend.Expert.Parameters[0].Value.ToArray();
        using var input = GradientCheck.Random([4, 8], 2);
        using var gradient = GradientCheck.Random([4, 8], 3);
        using var inputGradient = backend.Backward(input, gradient);
        Assert.Equal(1, backend.UpdateCount);
        Assert.NotEqual(before, backend.Expert.Parameters[0].Value.ToArray());
        Assert.Equal(input.Shape, inputGradient.Shape);
    }

    [Fact]
    public void InputGradient_IsBackwardsWithoutTheStep()
    {
        var frozen = Create();
        var trained = Create();
        var before = frozen.Expert.Parameters.Select(p => p.Value.ToArray()).ToArray();
        using var input = GradientCheck.Random([4, 8], 2);
        using var gradient = GradientCheck.Random([4, 8], 3);
        using var fromFrozen = frozen.InputGradient(input, gradient);
        using var again = frozen.InputGradient(input, gradient);
        using var fromTrained = trained.Backward(input, gradient);
        // The same input gradient a training backward returns (computed before its step), and no step.
        Assert.Equal(fromTrained.ToArray(), fromFrozen.ToArray());
        Assert.Equal(fromFrozen.ToArray(), again.ToArray());
        Assert.Equal(0, frozen.UpdateCount);
        Assert.Equal(before, frozen.Expert.Parameters.Select(p => p.Value.ToArray()).ToArray());
    }

    [Fact]
    public void Backward_NaNGradient_SkipsTheUpdate_AndSaysSo()
    {
        var backend = Create();
        var before = backend.Expert.Parameters[0].Value.ToArray();
        using var input = GradientCheck.Random([2, 8], 2);
        using var gradient = Tensor.Zeros(2, 8);
        gradient.Span[3] = float.NaN;
        var e = Assert.Throws<ArithmeticException>(() => backend.Backward(input, gradient));
        Assert.Contains("ffn.0.0", e.Message);
        Assert.Equal(0, backend.UpdateCount);
        Assert.Equal(before, backend.Expert.Parameters[0].Value.ToArray());
    }

    [Fact]
    public void OptimizerOptions_UnknownName_IsRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => new OptimizerOptions { Name = "lion" }.Create([]));
        Assert.Contains("lion", e.Message);
    }
}
