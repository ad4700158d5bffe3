namespace MoEMesh.Tensors.Gemm;

/// <summary>GEMM through OpenBLAS <c>cblas_sgemm</c>: about five times the managed kernel on this hardware.</summary>
public sealed class OpenBlasGemm : GemmBackend
{
    private OpenBlasGemm(string library)
    {
        Library = library;
    }

    /// <inheritdoc />
    public override string Name => "openblas";

    /// <summary>The library file that was loaded.</summary>
    public string Library { get; }

    /// <inheritdoc />
    public override int Threads => OpenBlasNative.GetNumThreads();

    /// <summary>
    /// Loads OpenBLAS and sets its thread count (a process-wide setting of OpenBLAS), or returns null
    /// with the names that were tried.
    /// </summary>
    /// <param name="threads">Threads for OpenBLAS, or null to keep its default (all cores).</param>
    /// <param name="explicitPath">A library path to try first, or null.</param>
    /// <param name="tried">The names tried, when the result is null.</param>
    public static OpenBlasGemm? TryCreate(int? threads, string? explicitPath, out string tried)
    {
        if (!OpenBlasLibrary.TryLoad(explicitPath, out tried)) return null;
        if (threads is { } t) OpenBlasNative.SetNumThreads(t);
        return new OpenBlasGemm(OpenBlasLibrary.LoadedFrom!);
    }

    /// <inheritdoc />
    protected override unsafe void SgemmCore(bool transposeA, bool transposeB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            OpenBlasNative.Sgemm(OpenBlasNative.CblasRowMajor,
                transposeA ? OpenBlasNative.CblasTrans : OpenBlasNative.CblasNoTrans,
                transposeB ? OpenBlasNative.CblasTrans : OpenBlasNative.CblasNoTrans,
                m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
        }
    }
}
