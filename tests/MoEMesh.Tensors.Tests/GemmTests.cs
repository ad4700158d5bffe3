using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Tensors.Gemm;
using MoEMesh.Testing;

namespace MoEMesh.Tensors.Tests;

public class GemmTests
{
    public static TheoryData<int, int, int, bool, bool> Shapes => new()
    {
        { 1, 1, 1, false, false },
        { 3, 5, 7, false, false },
        { 3, 5, 7, true, false },
        { 3, 5, 7, false, true },
        { 3, 5, 7, true, true },
        { 17, 33, 65, true, false },
        { 64, 130, 520, false, true },
        { 70, 600, 129, false, false },
        { 9, 1030, 70, true, true },
    };

    private static OpenBlasGemm OpenBlas() =>
        OpenBlasGemm.TryCreate(null, null, out var tried)
        ?? throw new Xunit.Sdk.XunitException($"OpenBLAS did not load (tried {tried}); scripts/test installs libopenblas0-pthread.");

    [Theory]
    [MemberData(nameof(Shapes))]
    public void OpenBlasAndManaged_RandomShapes_AgreeWithDoubleReference(int m, int n, int k, bool transposeA, bool transposeB)
    {
        const float alpha = 0.75f, beta = -0.5f;
        int lda = (transposeA ? m : k) + 3, ldb = (transposeB ? k : n) + 1, ldc = n + 2;
        var a = Random((transposeA ? k : m) * lda, 1);
        var b = Random((transposeB ? n : k) * ldb, 2);
        var c0 = Random(m * ldc, 3);
        var expected = Reference(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c0, ldc);

        foreach (GemmBackend backend in new GemmBackend[] { OpenBlas(), new ManagedGemm(1), new ManagedGemm(2) })
        {
            var c = (float[])c0.Clone();
            backend.Sgemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            AssertAgrees(c, expected, c0, m, n, k, ldc, backend.Name);
        }
    }

    public static TheoryData<int, int, int> SmallBatchShapes => new()
    {
        { 1, 1, 1 },
        { 1, 4, 16 },
        { 2, 5, 17 },
        { 3, 7, 33 },
        { 3, 6, 0 },
        { 4, 8, 100 },
        { 5, 37, 9 },
        { 7, 12, 64 },
        { 8, 130, 257 },
        // Large enough (n·k ≥ 2^20) to be split between threads: several rows; one row; a last part of remainder columns only.
        { 6, 1030, 1024 },
        { 1, 4097, 256 },
        { 1, 5, 1 << 18 },
    };

    /// <summary>
    /// The small-batch kernel in each of its forms (512-bit and 256-bit blocks, on one thread and split between
    /// two; run directly, so on any hardware) agrees with the double reference for strided matrices, alpha, beta,
    /// beta 0 over NaN and alpha 0 over Inf; and where the hardware has it, a backend sends these products to it.
    /// </summary>
    [Theory]
    [MemberData(nameof(SmallBatchShapes))]
    public void SmallBatchKernel_AgreesWithTheReference_InEveryForm(int m, int n, int k)
    {
        int lda = k + 3, ldb = k + 1, ldc = n + 2;
        var a = Random(m * lda, 11);
        var b = Random(n * ldb, 12);
        var c0 = Random(m * ldc, 13);
        foreach (var (alpha, beta) in new[] { (0.75f, -0.5f), (0.75f, 0f), (0f, 0.5f), (0f, 0f) })
        {
            var start = (float[])c0.Clone();
            if (beta == 0f)
                for (int i = 0; i < m; i++) start[i * ldc] = float.NaN;
            var (aRead, bRead) = ((float[])a.Clone(), (float[])b.Clone());
            if (alpha == 0f) aRead[0] = bRead[0] = float.PositiveInfinity;
            var expected = Reference(false, true, m, n, k, alpha, a, lda, b, ldb, beta, beta == 0f ? c0 : start, ldc);
            foreach (var (threads, wide) in new[] { (1, true), (1, false), (2, true), (2, false) })
            {
                var c = (float[])start.Clone();
                SmallBatchGemm.Run(m, n, k, alpha, aRead, lda, bRead, ldb, beta, c, ldc, threads, wide);
                AssertAgrees(c, expected, start, m, n, k, ldc, $"kernel x{threads} wide {wide}, alpha {alpha}, beta {beta}");
            }
        }
        // A backend takes the kernel's way where 256-bit vectors are accelerated, and its own otherwise; either agrees.
        Assert.Equal(System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated, SmallBatchGemm.Applies(false, true, m));
        var backendExpected = Reference(false, true, m, n, k, 0.75f, a, lda, b, ldb, -0.5f, c0, ldc);
        foreach (var (backend, small) in new (GemmBackend, bool)[] { (new ManagedGemm(2), true), (OpenBlas(), true), (OpenBlas(), false) })
        {
            backend.SmallBatchKernel = small;
            var c = (float[])c0.Clone();
            backend.Sgemm(false, true, m, n, k, 0.75f, a, lda, b, ldb, -0.5f, c, ldc);
            AssertAgrees(c, backendExpected, c0, m, n, k, ldc, $"{backend.Name} small {small}");
        }
    }

    [Fact]
    public void Sgemm_BetaZero_IgnoresNaNInOutput()
    {
        var c = new[] { float.NaN, float.NaN };
        foreach (GemmBackend backend in new GemmBackend[] { OpenBlas(), new ManagedGemm() })
        {
            backend.Sgemm(false, false, 1, 2, 1, 1f, [2f], 1, [3f, 4f], 2, 0f, c, 2);
            Assert.Equal([6f, 8f], c);
        }
    }

    [Fact]
    public void Sgemm_SpanTooShort_ThrowsNamingTheMatrix()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            new ManagedGemm().Sgemm(false, false, 2, 2, 2, 1f, new float[3], 2, new float[4], 2, 0f, new float[4], 2));
        Assert.Contains("matrix A", e.Message);
    }

    [Fact]
    public void MatMul_InnerDimensionsDiffer_ThrowsWithShapes()
    {
        using var a = Tensor.Zeros(2, 3);
        using var b = Tensor.Zeros(4, 5);
        using var c = Tensor.Zeros(2, 5);
        var e = Assert.Throws<ArgumentException>(() => new ManagedGemm().MatMul(a, false, b, false, c));
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("[4, 5]", e.Message);
    }

    [Fact]
    public void Select_ForceManaged_ReturnsManagedWithRequestedThreads()
    {
        var backend = Gemm.Gemm.Select(new GemmOptions { ForceManaged = true, Threads = 2 }, NullLogger.Instance);
        Assert.IsType<ManagedGemm>(backend);
        Assert.Equal(2, backend.Threads);
    }

    [Fact]
    public void Select_Default_FindsOpenBlas()
    {
        var backend = Gemm.Gemm.Select(new GemmOptions(), NullLogger.Instance);
        Assert.Equal("openblas", backend.Name);
    }

    [Fact]
    public void Select_OpenBlasMissing_FallsBackToManaged_WithOneWarningNamingWhatWasTried()
    {
        var logger = new ListLogger();
        var backend = Gemm.Gemm.Select(new GemmOptions { Threads = 1 }, logger, _ => (null, "libopenblas.so.0, openblas"));
        Assert.IsType<ManagedGemm>(backend);
        var line = Assert.Single(logger.Lines);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, line.Level);
        Assert.Contains("libopenblas.so.0, openblas", line.Message);
        Assert.Contains("managed", line.Message);
    }

    [Fact]
    public void Select_ZeroThreads_IsRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => Gemm.Gemm.Select(new GemmOptions { Threads = 0 }, NullLogger.Instance));
        Assert.Contains("Threads", e.Message);
    }

    /// <summary>C agrees with the reference within float rounding over k terms, and the padding past n columns is as it was.</summary>
    private static void AssertAgrees(float[] c, double[] expected, float[] before, int m, int n, int k, int ldc, string what)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < ldc; j++)
            {
                int at = i * ldc + j;
                double want = j < n ? expected[at] : before[at];
                Assert.True(Math.Abs(c[at] - want) <= 1e-4 * Math.Max(1, Math.Abs(want)) * Math.Sqrt(k), $"{what}: C[{i},{j}] = {c[at]}, expected {want}");
            }
    }

    private static float[] Random(int length, ulong seed)
    {
        var values = new float[length];
        new SeededRandom(seed).FillUniform(values, -1f, 1f);
        return values;
    }

    private static double[] Reference(bool ta, bool tb, int m, int n, int k, float alpha, float[] a, int lda, float[] b, int ldb, float beta, float[] c, int ldc)
    {
        var result = new double[c.Length];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int p = 0; p < k; p++)
                    sum += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
                result[i * ldc + j] = alpha * sum + beta * (double)c[i * ldc + j];
            }
        return result;
    }
}
