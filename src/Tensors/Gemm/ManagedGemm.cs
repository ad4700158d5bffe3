using System.Buffers;
using System.Numerics.Tensors;

namespace MoEMesh.Tensors.Gemm;

/// <summary>
/// A portable GEMM on <see cref="TensorPrimitives"/> for machines without OpenBLAS. Transposed operands
/// are first copied into row-major order (O(size) against O(m·n·k) work), then C is updated a row at
/// a time with fused multiply-adds over cache-sized panels of B. Rows of C are split across threads.
/// </summary>
public sealed class ManagedGemm : GemmBackend
{
    /// <summary>Creates the kernel.</summary>
    /// <param name="threads">Threads to split rows of C across; at least 1.</param>
    public ManagedGemm(int threads = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Threads = threads;
    }

    /// <inheritdoc />
    public override string Name => "managed";

    /// <inheritdoc />
    public override int Threads { get; }

    /// <inheritdoc />
    protected override unsafe void SgemmCore(bool transposeA, bool transposeB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        float[]? aCopy = transposeA ? TransposeToRented(a, k, m, lda) : null;
        float[]? bCopy = transposeB ? TransposeToRented(b, n, k, ldb) : null;
        try
        {
            fixed (float* pa = a, paCopy = aCopy, pb = b, pbCopy = bCopy, pc = c)
            {
                var job = new RowJob(
                    (nint)(aCopy is null ? pa : paCopy), aCopy is null ? lda : k,
                    (nint)(bCopy is null ? pb : pbCopy), bCopy is null ? ldb : n,
                    (nint)pc, ldc, n, k, alpha, beta);
                int workers = Math.Min(Threads, Math.Max(1, m / 8));
                if (workers == 1)
                {
                    job.Run(0, m);
                    return;
                }
                int chunk = (m + workers - 1) / workers;
                Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers },
                    t => job.Run(t * chunk, Math.Min(m, (t + 1) * chunk)));
            }
        }
        finally
        {
            if (aCopy is not null) ArrayPool<float>.Shared.Return(aCopy);
            if (bCopy is not null) ArrayPool<float>.Shared.Return(bCopy);
        }
    }

    /// <summary>Copies a stored rows × columns matrix (leading dimension ld) into its columns × rows transpose.</summary>
    private static float[] TransposeToRented(ReadOnlySpan<float> source, int rows, int columns, int ld)
    {
        var result = ArrayPool<float>.Shared.Rent(Math.Max(1, rows * columns));
        for (int r = 0; r < rows; r++)
        {
            var sourceRow = source.Slice(r * ld, columns);
            for (int col = 0; col < columns; col++)
                result[col * rows + r] = sourceRow[col];
        }
        return result;
    }

    /// <summary>C[rows] = alpha · A[rows] · B + beta · C[rows] on pinned row-major operands.</summary>
    private readonly unsafe record struct RowJob(nint A, int Lda, nint B, int Ldb, nint C, int Ldc, int N, int K, float Alpha, float Beta)
    {
        private const int PanelColumns = 512;
        private const int PanelDepth = 64;

        public void Run(int rowStart, int rowEnd)
        {
            float* a = (float*)A, b = (float*)B, c = (float*)C;
            for (int i = rowStart; i < rowEnd; i++)
            {
                var row = new Span<float>(c + (long)i * Ldc, N);
                if (Beta == 0f) row.Clear();
                else if (Beta != 1f) TensorPrimitives.Multiply(row, Beta, row);
            }
            // Panels of B small enough to stay in L2 while every row of C streams past them.
            for (int j0 = 0; j0 < N; j0 += PanelColumns)
            {
                int width = Math.Min(PanelColumns, N - j0);
                for (int p0 = 0; p0 < K; p0 += PanelDepth)
                {
                    int depth = Math.Min(PanelDepth, K - p0);
                    for (int i = rowStart; i < rowEnd; i++)
                    {
                        var cRow = new Span<float>(c + (long)i * Ldc + j0, width);
                        for (int p = p0; p < p0 + depth; p++)
                        {
                            float scale = Alpha * a[(long)i * Lda + p];
                            if (scale != 0f)
                                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(b + (long)p * Ldb + j0, width), scale, cRow, cRow);
                        }
                    }
                }
            }
        }
    }
}
