using MoEMesh.Tensors;

namespace MoEMesh.Benchmarks;

/// <summary>The inputs the scenario benchmarks send.</summary>
internal static class BenchmarkInputs
{
    /// <summary>Rows of <paramref name="dim"/> standard-normal values, seeded.</summary>
    public static Tensor RandomRows(int rows, int dim, ulong seed)
    {
        var t = Tensor.Uninitialized(new TensorShape(rows, dim));
        new SeededRandom(seed).FillNormal(t.Span, 0f, 1f);
        return t;
    }
}
