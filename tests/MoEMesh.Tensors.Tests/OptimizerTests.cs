using MoEMesh.Tensors.Layers;
using MoEMesh.Tensors.Losses;
using MoEMesh.Tensors.Optimizers;
using MoEMesh.Testing;

namespace MoEMesh.Tensors.Tests;

public class OptimizerTests
{
    /// <summary>Targets from a fixed random two-layer network: a smooth problem an MLP can fit.</summary>
    private static (Tensor Inputs, Tensor Targets) RegressionProblem()
    {
        var teacher = new Sequential(new Linear(8, 16, new SeededRandom(100), "t1"), new Gelu(), new Linear(16, 2, new SeededRandom(101), "t2"));
        var inputs = GradientCheck.Random([256, 8], 102);
        return (inputs, teacher.Forward(inputs));
    }

    private static float Train(Func<IReadOnlyList<Parameter>, Optimizer> createOptimizer, int steps)
    {
        var (inputs, targets) = RegressionProblem();
        var random = new SeededRandom(7);
        var student = new Sequential(new Linear(8, 32, random, "s1"), new Gelu(), new Linear(32, 2, random, "s2"));
        var optimizer = createOptimizer(student.Parameters);
        float loss = float.NaN;
        for (int step = 0; step < steps; step++)
        {
            student.ZeroGradients();
            using var tape = new ActivationTape();
            using var output = student.Forward(inputs, tape);
            using var result = MeanSquaredError.Compute(output, targets);
            using var _ = student.Backward(result.Gradient, tape);
            optimizer.Step();
            loss = result.Value;
        }
        return loss;
    }

    [Fact]
    public void Adam_SmallRegression_ReachesLossBelow2e3()
    {
        float initial = Train(p => new Adam(p, LearningRateSchedule.Constant(1e-3f)), 1);
        float final = Train(p => new Adam(p, LearningRateSchedule.Constant(1e-2f)), 400);
        Assert.True(final < 2e-3f, $"Adam reached {final} (started at {initial})");
    }

    [Fact]
    public void AdamWWithCosineSchedule_SmallRegression_ReachesLossBelow5e3()
    {
        float final = Train(p => new Adam(p, new LearningRateSchedule(1e-2f, 20, 400, DecayShape.Cosine), weightDecay: 1e-4f, decoupledWeightDecay: true), 400);
        Assert.True(final < 5e-3f, $"AdamW reached {final}");
    }

    [Fact]
    public void SgdWithMomentum_SmallRegression_ReachesLossBelow2e2()
    {
        float initial = Train(p => new Sgd(p, LearningRateSchedule.Constant(0.05f), momentum: 0.9f), 1);
        float final = Train(p => new Sgd(p, LearningRateSchedule.Constant(0.05f), momentum: 0.9f), 400);
        Assert.True(final < 2e-2f && final < initial / 10, $"SGD reached {final} (started at {initial})");
    }

    [Fact]
    public void Adam_FirstStep_MovesEachWeightByLearningRate()
    {
        // With bias correction, Adam's first step is lr · sign(g) for |g| ≫ ε.
        var p = new Parameter("w", Tensor.FromArray([1f, 1f, 1f], [3]));
        p.Gradient.Span[0] = 0.5f;
        p.Gradient.Span[1] = -3f;
        new Adam([p], LearningRateSchedule.Constant(0.1f)).Step();
        Assert.Equal([0.9f, 1.1f, 1f], p.Value.ToArray().Select(v => MathF.Round(v, 5)));
    }

    [Fact]
    public void AdamW_ZeroGradient_ShrinksWeightsByDecay()
    {
        var p = new Parameter("w", Tensor.FromArray([2f], [1]));
        new Adam([p], LearningRateSchedule.Constant(0.1f), weightDecay: 0.5f, decoupledWeightDecay: true).Step();
        Assert.Equal(2f * (1 - 0.1f * 0.5f), p.Value.Span[0], 6);
    }

    [Fact]
    public void SgdNesterov_TwoSteps_FollowTheFormula()
    {
        var p = new Parameter("w", Tensor.FromArray([0f], [1]));
        var sgd = new Sgd([p], LearningRateSchedule.Constant(0.1f), momentum: 0.5f, nesterov: true);
        p.Gradient.Span[0] = 1f;
        sgd.Step(); // v = 1, w -= 0.1·(1 + 0.5·1)
        sgd.Step(); // v = 1.5, w -= 0.1·(1 + 0.5·1.5)
        Assert.Equal(-0.15f - 0.175f, p.Value.Span[0], 6);
    }

    [Fact]
    public void Adam_SparseParameter_UpdatesOnlyTouchedRows()
    {
        var p = new Parameter("table", Tensor.FromArray([1f, 1f, 1f, 1f, 1f, 1f], [3, 2]), sparseRows: true);
        p.Gradient.Row(1).Fill(1f);
        p.TouchRow(1);
        var adam = new Adam([p], LearningRateSchedule.Constant(0.1f));
        adam.Step();
        Assert.Equal([1f, 1f, 0.9f, 0.9f, 1f, 1f], p.Value.ToArray().Select(v => MathF.Round(v, 5)));
        Assert.Equal([0f, 0f, 0.1f, 0.1f, 0f, 0f], adam.State["table.exp_avg"].ToArray().Select(v => MathF.Round(v, 5)));
    }

    [Theory]
    [InlineData(0, 0.25f)]
    [InlineData(3, 1f)]
    [InlineData(4, 1f)]
    [InlineData(9, 0.5f)]
    [InlineData(14, 0f)]
    [InlineData(100, 0f)]
    public void Schedule_WarmupThenLinear_GivesRate(long step, float expected)
    {
        var schedule = new LearningRateSchedule(1f, WarmupSteps: 4, TotalSteps: 14, Decay: DecayShape.Linear);
        Assert.Equal(expected, schedule.At(step), 6);
    }

    [Theory]
    [InlineData(0, 1f)]
    [InlineData(5, 0.55f)]
    [InlineData(10, 0.1f)]
    public void Schedule_Cosine_GivesRate(long step, float expected)
    {
        var schedule = new LearningRateSchedule(1f, TotalSteps: 10, Decay: DecayShape.Cosine, MinRate: 0.1f);
        Assert.Equal(expected, schedule.At(step), 5);
    }

    [Fact]
    public void Schedule_DecayWithoutTotalSteps_IsRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => new LearningRateSchedule(1f, 10, 5, DecayShape.Cosine).Validate());
        Assert.Contains("TotalSteps", e.Message);
    }

    [Fact]
    public void ClipByGlobalNorm_ScalesAllGradientsToMaxNorm()
    {
        var a = new Parameter("a", Tensor.Zeros(2));
        var b = new Parameter("b", Tensor.Zeros(1));
        a.Gradient.Span[0] = 3f;
        b.Gradient.Span[0] = 4f;
        float norm = GradientClipping.ClipByGlobalNorm([a, b], 1f);
        Assert.Equal(5f, norm, 5);
        Assert.Equal(0.6f, a.Gradient.Span[0], 5);
        Assert.Equal(0.8f, b.Gradient.Span[0], 5);
        Assert.Equal(1f, GradientClipping.GlobalNorm([a, b]), 4);
    }

    [Fact]
    public void ClipByGlobalNorm_NaN_ReportsNaN_AndLeavesGradients()
    {
        var a = new Parameter("a", Tensor.Zeros(2));
        a.Gradient.Span[0] = float.NaN;
        a.Gradient.Span[1] = 100f;
        Assert.True(float.IsNaN(GradientClipping.ClipByGlobalNorm([a], 1f)));
        Assert.Equal(100f, a.Gradient.Span[1]);
    }

    [Fact]
    public void Restore_ThenStep_ContinuesExactlyAsTheOriginal()
    {
        Parameter Make() => new("w", Tensor.FromArray([1f, -2f], [2]));
        var original = Make();
        var adam = new Adam([original], LearningRateSchedule.Constant(0.1f));
        original.Gradient.Span.Fill(0.3f);
        adam.Step();

        var copy = Make();
        original.Value.Span.CopyTo(copy.Value.Span);
        var restored = new Adam([copy], LearningRateSchedule.Constant(0.1f));
        restored.Restore(adam.StepCount, adam.State);
        copy.Gradient.Span.Fill(-0.7f);
        original.Gradient.Span.Fill(-0.7f);
        adam.Step();
        restored.Step();
        Assert.Equal(original.Value.ToArray(), copy.Value.ToArray());
        Assert.Equal(2, restored.StepCount);
    }

    [Fact]
    public void Adopt_TakesTheStateTensorsThemselves_ThenStepsExactlyAsTheOriginal_AndRefusesBadStateTakingNone()
    {
        Parameter Make() => new("w", Tensor.FromArray([1f, -2f], [2]));
        var original = Make();
        var adam = new Adam([original], LearningRateSchedule.Constant(0.1f));
        original.Gradient.Span.Fill(0.3f);
        adam.Step();
        var saved = adam.State.ToDictionary(s => s.Key, s => s.Value.Clone());

        var copy = Make();
        original.Value.Span.CopyTo(copy.Value.Span);
        var restored = new Adam([copy], LearningRateSchedule.Constant(0.1f));
        using var misshapen = Tensor.Zeros(3);
        Assert.Throws<InvalidDataException>(() => restored.Adopt(1, new Dictionary<string, Tensor> { ["w.exp_avg"] = misshapen }));
        Assert.Empty(restored.State);
        restored.Adopt(adam.StepCount, saved);

        Assert.All(saved, s => Assert.Same(s.Value, restored.State[s.Key]));
        copy.Gradient.Span.Fill(-0.7f);
        original.Gradient.Span.Fill(-0.7f);
        adam.Step();
        restored.Step();
        Assert.Equal(original.Value.ToArray(), copy.Value.ToArray());
    }

    [Fact]
    public void Restore_UnknownOrMisshapenState_IsRefusedNamingIt()
    {
        var parameter = new Parameter("w", Tensor.Zeros(2, 3));
        var adam = new Adam([parameter], new LearningRateSchedule(0.1f));
        using var unknown = Tensor.Zeros(2, 3);
        using var misshapen = Tensor.Zeros(3, 2);
        var e1 = Assert.Throws<InvalidDataException>(() => adam.Restore(1, new Dictionary<string, Tensor> { ["v.exp_avg"] = unknown }));
        Assert.Contains("v.exp_avg", e1.Message);
        var e2 = Assert.Throws<InvalidDataException>(() => adam.Restore(1, new Dictionary<string, Tensor> { ["w.exp_avg"] = misshapen }));
        Assert.Contains("w.exp_avg has shape [3, 2]", e2.Message);
    }

    [Fact]
    public void Optimizer_DuplicateParameterNames_AreRejected()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            new Sgd([new Parameter("w", Tensor.Zeros(1)), new Parameter("w", Tensor.Zeros(1))], LearningRateSchedule.Constant(1f)));
        Assert.Contains("w", e.Message);
    }
}
