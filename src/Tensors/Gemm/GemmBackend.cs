namespace MoEMesh.Tensors.Gemm;

/// <summary>
/// Single-precision general matrix multiply, row-major:
/// <c>C = alpha · op(A) · op(B) + beta · C</c> where <c>op(X)</c> is X or its transpose,
/// op(A) is m × k, op(B) is k × n and C is m × n. Argument checking lives here once; the
/// backends only compute. A product of a few rows by a transposed B (a layer's forward at a small batch)
/// goes to <see cref="SmallBatchGemm"/> instead, unless <see cref="SmallBatchKernel"/> is off.
/// </summary>
public abstract class GemmBackend
{
    /// <summary>A short name for logs and benchmark output ("openblas", "managed").</summary>
    public abstract string Name { get; }

    /// <summary>Threads the backend computes with.</summary>
    public abstract int Threads { get; }

    /// <summary>Whether products of at most 8 rows by a transposed B use the small-batch kernel. Default true; benchmarks turn it off to compare.</summary>
    public bool SmallBatchKernel { get; set; } = true;

    /// <summary>Computes <c>C = alpha · op(A) · op(B) + beta · C</c>. When beta is 0, C's old contents are ignored (NaN included).</summary>
    /// <exception cref="ArgumentException">A dimension is negative, a leading dimension is too small or a span too short.</exception>
    public void Sgemm(bool transposeA, bool transposeB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentException($"GEMM dimensions must be non-negative; got m={m}, n={n}, k={k}.");
        // Stored A is m × k, or k × m when transposed; likewise B.
        Require(transposeA ? k : m, transposeA ? m : k, a.Length, lda, "A");
        Require(transposeB ? n : k, transposeB ? k : n, b.Length, ldb, "B");
        Require(m, n, c.Length, ldc, "C");
        if (m == 0 || n == 0) return;
        if (SmallBatchKernel && SmallBatchGemm.Applies(transposeA, transposeB, m))
        {
            SmallBatchGemm.Run(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, Threads, wide: true);
            return;
        }
        SgemmCore(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    /// <summary>The computation, with arguments already checked and m, n &gt; 0.</summary>
    protected abstract void SgemmCore(bool transposeA, bool transposeB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc);

    private static void Require(int rows, int columns, int length, int leadingDimension, string name)
    {
        if (leadingDimension < Math.Max(1, columns))
            throw new ArgumentException($"GEMM leading dimension of {name} is {leadingDimension}, smaller than its {columns} columns.");
        long needed = rows == 0 ? 0 : (long)(rows - 1) * leadingDimension + columns;
        if (length < needed)
            throw new ArgumentException($"GEMM matrix {name} ({rows} × {columns}, leading dimension {leadingDimension}) needs {needed} elements; got {length}.");
    }
}
