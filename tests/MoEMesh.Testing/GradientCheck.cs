using MoEMesh.Tensors;

namespace MoEMesh.Testing;

/// <summary>
/// Finite-difference checks of analytic gradients. The scalar under test is L = Σ output ⊙ R for a fixed
/// random R, so dL/doutput = R and any backward can be checked from its input and parameter gradients.
/// Differences are central, accumulated in double.
/// </summary>
public static class GradientCheck
{
    /// <summary>The numeric gradient of <paramref name="loss"/> with respect to every element of <paramref name="values"/>.</summary>
    public static double[] Numeric(Func<double> loss, Span<float> values, float epsilon)
    {
        var gradient = new double[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            float original = values[i];
            values[i] = original + epsilon;
            double plus = loss();
            values[i] = original - epsilon;
            double minus = loss();
            values[i] = original;
            gradient[i] = (plus - minus) / (2.0 * epsilon);
        }
        return gradient;
    }

    /// <summary>Σ a ⊙ b in double.</summary>
    public static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += (double)a[i] * b[i];
        return sum;
    }

    /// <summary>
    /// Asserts that <paramref name="analytic"/> matches <paramref name="numeric"/> within
    /// |a − n| ≤ tolerance · max(1, |n|), naming the first element that does not.
    /// </summary>
    public static void AssertClose(ReadOnlySpan<float> analytic, double[] numeric, double tolerance, string what)
    {
        if (analytic.Length != numeric.Length)
            throw new Xunit.Sdk.XunitException($"{what}: {analytic.Length} analytic against {numeric.Length} numeric values.");
        for (int i = 0; i < numeric.Length; i++)
        {
            double error = Math.Abs(analytic[i] - numeric[i]);
            if (error > tolerance * Math.Max(1.0, Math.Abs(numeric[i])))
                throw new Xunit.Sdk.XunitException($"{what}[{i}]: analytic {analytic[i]} against numeric {numeric[i]} (error {error}).");
        }
    }

    /// <summary>A tensor of the given shape filled from N(0, 1) with a seed.</summary>
    public static Tensor Random(TensorShape shape, ulong seed, float scale = 1f)
    {
        var t = Tensor.Uninitialized(shape);
        new SeededRandom(seed).FillNormal(t.Span, 0f, scale);
        return t;
    }
}

/// <summary>Finite-difference check of a whole differentiable function with parameters (a layer or an expert).</summary>
public static class DifferentiableCheck
{
    /// <summary>
    /// Checks the input gradient and every parameter gradient that <paramref name="backward"/> produces
    /// for L = Σ forward(input) ⊙ R against central differences.
    /// </summary>
    public static void Run(Func<Tensor, Tensor> forward, Func<Tensor, Tensor, Tensor> backward, IReadOnlyList<Parameter> parameters,
        Tensor input, float epsilon = 1e-2f, double tolerance = 2e-3, ulong seed = 99)
    {
        TensorShape outputShape;
        using (var probe = forward(input)) outputShape = probe.Shape;
        using var projection = GradientCheck.Random(outputShape, seed);
        double Loss()
        {
            using var output = forward(input);
            return GradientCheck.Dot(output.Span, projection.Span);
        }

        foreach (var p in parameters) p.ZeroGradient();
        using var inputGradient = backward(input, projection);
        GradientCheck.AssertClose(inputGradient.Span, GradientCheck.Numeric(Loss, input.Span, epsilon), tolerance, "input gradient");
        foreach (var p in parameters)
            GradientCheck.AssertClose(p.Gradient.Span, GradientCheck.Numeric(Loss, p.Value.Span, epsilon), tolerance, $"gradient of {p.Name}");
    }
}
