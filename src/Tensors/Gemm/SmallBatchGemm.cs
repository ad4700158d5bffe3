using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MoEMesh.Tensors.Gemm;

/// <summary>
/// <c>C = alpha · A · Bᵀ + beta · C</c> for a few rows of A (at most <see cref="MaxRows"/>): a layer's
/// forward at a small batch, x·Wᵀ with W stored [out, in]. A GEMM library packs the whole of B for such a
/// product, which at one row cost 1.8 to 7 times reading B once (benchmark "small"); here each row of B is read once and
/// multiplied with every row of A while it is in L1, so the product runs near the memory bandwidth that
/// reading the weights takes. Four rows of B against four rows of A (16 accumulators of 16 lanes) where
/// Vector512 is accelerated, against two rows of A (8 of 8 lanes) otherwise; leftover rows of A one at a time. Columns of C
/// (rows of B) are split between threads when B is large enough for the split to pay. The kernels are compiled optimised from their first
/// call (a query's first expert call should not run them unoptimised).
/// </summary>
internal static unsafe class SmallBatchGemm
{
    /// <summary>
    /// Rows of A up to which this kernel is used. Measured on 2 cores with AVX-512 (benchmark "small" with the
    /// limit raised to 16): at 8 rows it beat OpenBLAS by 1.1 to 2.4x, at 12 they tied, at 16 OpenBLAS's packed
    /// GEMM was as fast or faster.
    /// </summary>
    public const int MaxRows = 8;

    /// <summary>Elements of B from which the product is split between threads.</summary>
    private const long ParallelFrom = 1 << 20;

    /// <summary>Whether a product of this shape goes here (on hardware with 256-bit vectors; elsewhere the backend does it all).</summary>
    public static bool Applies(bool transposeA, bool transposeB, int m) => !transposeA && transposeB && m <= MaxRows && Vector256.IsHardwareAccelerated;

    /// <summary>
    /// The product, arguments already checked (m, n &gt; 0; as <see cref="GemmBackend.Sgemm"/> takes them), split
    /// between up to <paramref name="threads"/> threads; the Vector512 kernel only when <paramref name="wide"/>
    /// (tests set it false to check the other one where both run).
    /// </summary>
    public static void Run(int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc,
        int threads, bool wide)
    {
        if (alpha == 0f)
        {
            // As BLAS: A and B are not read (NaN or Inf in them does not reach C).
            for (int r = 0; r < m; r++)
            {
                var row = c.Slice(r * ldc, n);
                if (beta == 0f) row.Clear();
                else System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
            }
            return;
        }
        int blocks = (n + 3) / 4;
        int parts = (long)n * k >= ParallelFrom ? Math.Clamp(threads, 1, blocks) : 1;
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            var product = new Product(pa, lda, pb, ldb, pc, ldc, m, k, alpha, beta, wide);
            if (parts == 1)
            {
                product.Columns(0, n);
                return;
            }
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts },
                part => product.Columns((int)(4 * ((long)blocks * part / parts)), (int)Math.Min(n, 4 * ((long)blocks * (part + 1) / parts))));
        }
    }

    /// <summary>The operands of one product, as pointers that stay fixed while it runs.</summary>
    private readonly struct Product(float* a, int lda, float* b, int ldb, float* c, int ldc, int m, int k, float alpha, float beta, bool wide)
    {
        /// <summary>Columns [from, to) of C: rows of B taken four at a time, each against every row of A.</summary>
        public void Columns(int from, int to) => SmallBatchGemm.Columns(a, lda, b, ldb, c, ldc, m, k, new Scale(alpha, beta), wide && Vector512.IsHardwareAccelerated, from, to);
    }

    /// <summary>c = alpha · dot + beta · c; with beta 0 the old c is not read (it may be NaN).</summary>
    private readonly record struct Scale(float Alpha, float Beta)
    {
        public void Store(float* c, float dot) => *c = Beta == 0f ? Alpha * dot : Alpha * dot + Beta * *c;
    }

    // The kernels take every size as an argument (never a field), are not inlined into their loop, and take every sum
    // before they call anything: the JIT then keeps all sixteen accumulators in registers through the loop (otherwise
    // it stored them to the stack on every pass, and the 4 x 4 kernel ran at half speed).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Columns(float* a, int lda, float* b, int ldb, float* c, int ldc, int m, int k, Scale scale, bool wide, int from, int to)
    {
        int j = from;
        for (; j + 4 <= to; j += 4)
        {
            float* b0 = b + (long)j * ldb;
            int r = 0;
            if (wide)
            {
                for (; r + 4 <= m; r += 4) Wide4x4(a + (long)r * lda, lda, b0, ldb, k, c + (long)r * ldc + j, ldc, scale);
                for (; r < m; r++) Wide1x4(a + (long)r * lda, b0, ldb, k, c + (long)r * ldc + j, scale);
            }
            else
            {
                for (; r + 2 <= m; r += 2) Narrow2x4(a + (long)r * lda, lda, b0, ldb, k, c + (long)r * ldc + j, ldc, scale);
                for (; r < m; r++) Narrow1x4(a + (long)r * lda, b0, ldb, k, c + (long)r * ldc + j, scale);
            }
        }
        for (; j < to; j++)
            for (int r = 0; r < m; r++)
                scale.Store(c + (long)r * ldc + j, System.Numerics.Tensors.TensorPrimitives.Dot(new ReadOnlySpan<float>(a + (long)r * lda, k), new ReadOnlySpan<float>(b + (long)j * ldb, k)));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void Wide4x4(float* a0, int lda, float* b0, int ldb, int k, float* c0, int ldc, Scale scale)
    {
        float* a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda, b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
        Vector512<float> s00 = default, s01 = default, s02 = default, s03 = default, s10 = default, s11 = default, s12 = default, s13 = default,
            s20 = default, s21 = default, s22 = default, s23 = default, s30 = default, s31 = default, s32 = default, s33 = default;
        int i = 0;
        for (; i + 16 <= k; i += 16)
        {
            var v0 = Vector512.Load(b0 + i);
            var v1 = Vector512.Load(b1 + i);
            var v2 = Vector512.Load(b2 + i);
            var v3 = Vector512.Load(b3 + i);
            var u = Vector512.Load(a0 + i);
            s00 = Vector512.FusedMultiplyAdd(v0, u, s00); s01 = Vector512.FusedMultiplyAdd(v1, u, s01); s02 = Vector512.FusedMultiplyAdd(v2, u, s02); s03 = Vector512.FusedMultiplyAdd(v3, u, s03);
            u = Vector512.Load(a1 + i);
            s10 = Vector512.FusedMultiplyAdd(v0, u, s10); s11 = Vector512.FusedMultiplyAdd(v1, u, s11); s12 = Vector512.FusedMultiplyAdd(v2, u, s12); s13 = Vector512.FusedMultiplyAdd(v3, u, s13);
            u = Vector512.Load(a2 + i);
            s20 = Vector512.FusedMultiplyAdd(v0, u, s20); s21 = Vector512.FusedMultiplyAdd(v1, u, s21); s22 = Vector512.FusedMultiplyAdd(v2, u, s22); s23 = Vector512.FusedMultiplyAdd(v3, u, s23);
            u = Vector512.Load(a3 + i);
            s30 = Vector512.FusedMultiplyAdd(v0, u, s30); s31 = Vector512.FusedMultiplyAdd(v1, u, s31); s32 = Vector512.FusedMultiplyAdd(v2, u, s32); s33 = Vector512.FusedMultiplyAdd(v3, u, s33);
        }
        // Every sum is taken before the first call: an accumulator live across a call is kept in memory, in the loop too.
        var sums = stackalloc float[16]
        {
            Vector512.Sum(s00), Vector512.Sum(s01), Vector512.Sum(s02), Vector512.Sum(s03), Vector512.Sum(s10), Vector512.Sum(s11), Vector512.Sum(s12), Vector512.Sum(s13),
            Vector512.Sum(s20), Vector512.Sum(s21), Vector512.Sum(s22), Vector512.Sum(s23), Vector512.Sum(s30), Vector512.Sum(s31), Vector512.Sum(s32), Vector512.Sum(s33),
        };
        Finish(a0, b0, ldb, k, i, c0, scale, sums);
        Finish(a1, b0, ldb, k, i, c0 + ldc, scale, sums + 4);
        Finish(a2, b0, ldb, k, i, c0 + 2 * ldc, scale, sums + 8);
        Finish(a3, b0, ldb, k, i, c0 + 3 * ldc, scale, sums + 12);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void Wide1x4(float* a0, float* b0, int ldb, int k, float* c0, Scale scale)
    {
        float* b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
        int i = 0;
        for (; i + 16 <= k; i += 16)
        {
            var u = Vector512.Load(a0 + i);
            s0 = Vector512.FusedMultiplyAdd(Vector512.Load(b0 + i), u, s0);
            s1 = Vector512.FusedMultiplyAdd(Vector512.Load(b1 + i), u, s1);
            s2 = Vector512.FusedMultiplyAdd(Vector512.Load(b2 + i), u, s2);
            s3 = Vector512.FusedMultiplyAdd(Vector512.Load(b3 + i), u, s3);
        }
        var sums = stackalloc float[4] { Vector512.Sum(s0), Vector512.Sum(s1), Vector512.Sum(s2), Vector512.Sum(s3) };
        Finish(a0, b0, ldb, k, i, c0, scale, sums);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void Narrow2x4(float* a0, int lda, float* b0, int ldb, int k, float* c0, int ldc, Scale scale)
    {
        float* a1 = a0 + lda, b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
        Vector256<float> s00 = default, s01 = default, s02 = default, s03 = default, s10 = default, s11 = default, s12 = default, s13 = default;
        int i = 0;
        for (; i + 8 <= k; i += 8)
        {
            var v0 = Vector256.Load(b0 + i);
            var v1 = Vector256.Load(b1 + i);
            var v2 = Vector256.Load(b2 + i);
            var v3 = Vector256.Load(b3 + i);
            var u = Vector256.Load(a0 + i);
            s00 = Vector256.FusedMultiplyAdd(v0, u, s00); s01 = Vector256.FusedMultiplyAdd(v1, u, s01); s02 = Vector256.FusedMultiplyAdd(v2, u, s02); s03 = Vector256.FusedMultiplyAdd(v3, u, s03);
            u = Vector256.Load(a1 + i);
            s10 = Vector256.FusedMultiplyAdd(v0, u, s10); s11 = Vector256.FusedMultiplyAdd(v1, u, s11); s12 = Vector256.FusedMultiplyAdd(v2, u, s12); s13 = Vector256.FusedMultiplyAdd(v3, u, s13);
        }
        var sums = stackalloc float[8]
        {
            Vector256.Sum(s00), Vector256.Sum(s01), Vector256.Sum(s02), Vector256.Sum(s03), Vector256.Sum(s10), Vector256.Sum(s11), Vector256.Sum(s12), Vector256.Sum(s13),
        };
        Finish(a0, b0, ldb, k, i, c0, scale, sums);
        Finish(a1, b0, ldb, k, i, c0 + ldc, scale, sums + 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void Narrow1x4(float* a0, float* b0, int ldb, int k, float* c0, Scale scale)
    {
        float* b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
        Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
        int i = 0;
        for (; i + 8 <= k; i += 8)
        {
            var u = Vector256.Load(a0 + i);
            s0 = Vector256.FusedMultiplyAdd(Vector256.Load(b0 + i), u, s0);
            s1 = Vector256.FusedMultiplyAdd(Vector256.Load(b1 + i), u, s1);
            s2 = Vector256.FusedMultiplyAdd(Vector256.Load(b2 + i), u, s2);
            s3 = Vector256.FusedMultiplyAdd(Vector256.Load(b3 + i), u, s3);
        }
        var sums = stackalloc float[4] { Vector256.Sum(s0), Vector256.Sum(s1), Vector256.Sum(s2), Vector256.Sum(s3) };
        Finish(a0, b0, ldb, k, i, c0, scale, sums);
    }

    /// <summary>Finishes four sums of one row of A (against four rows of B) with the elements from <paramref name="from"/> on, and stores them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Finish(float* a0, float* b0, int ldb, int k, int from, float* c0, Scale scale, float* sums)
    {
        float* b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
        float d0 = sums[0], d1 = sums[1], d2 = sums[2], d3 = sums[3];
        for (int i = from; i < k; i++)
        {
            d0 += a0[i] * b0[i];
            d1 += a0[i] * b1[i];
            d2 += a0[i] * b2[i];
            d3 += a0[i] * b3[i];
        }
        scale.Store(c0, d0);
        scale.Store(c0 + 1, d1);
        scale.Store(c0 + 2, d2);
        scale.Store(c0 + 3, d3);
    }
}
