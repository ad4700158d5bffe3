using System.Numerics.Tensors;

namespace MoEMesh.Tensors.Optimizers;

/// <summary>Clipping by global norm, as PyTorch's <c>clip_grad_norm_</c>.</summary>
public static class GradientClipping
{
    /// <summary>
    /// Scales every gradient by maxNorm / ‖g‖ when the global L2 norm ‖g‖ over all parameters exceeds
    /// <paramref name="maxNorm"/>. Returns the norm before clipping (NaN or ∞ if a gradient is not finite,
    /// in which case nothing is scaled so the caller can see and reject the step).
    /// </summary>
    public static float ClipByGlobalNorm(IEnumerable<Parameter> parameters, float maxNorm)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxNorm);
        var list = parameters as IReadOnlyList<Parameter> ?? parameters.ToArray();
        float norm = GlobalNorm(list);
        if (!float.IsFinite(norm) || norm <= maxNorm) return norm;
        float scale = maxNorm / (norm + 1e-6f);
        foreach (var p in list)
            p.ForEachGradientSlice((start, length) =>
            {
                var g = p.Gradient.Span.Slice(start, length);
                TensorPrimitives.Multiply(g, scale, g);
            });
        return norm;
    }

    /// <summary>The L2 norm of all gradients together (NaN or ∞ when any element is not finite).</summary>
    public static float GlobalNorm(IEnumerable<Parameter> parameters)
    {
        double sumOfSquares = 0;
        foreach (var p in parameters)
            p.ForEachGradientSlice((start, length) => sumOfSquares += TensorPrimitives.SumOfSquares(p.Gradient.Span.Slice(start, length)));
        return (float)Math.Sqrt(sumOfSquares);
    }
}
