using System.Runtime.InteropServices;

namespace MoEMesh.Tensors.Gemm;

/// <summary>
/// The three OpenBLAS entry points we use. The library name is a logical one resolved by
/// <see cref="OpenBlasLibrary"/>, which probes the file names OpenBLAS ships under on each platform.
/// </summary>
internal static unsafe partial class OpenBlasNative
{
    internal const string LibraryName = "moemesh-openblas";
    internal const int CblasRowMajor = 101;
    internal const int CblasNoTrans = 111;
    internal const int CblasTrans = 112;

    [LibraryImport(LibraryName, EntryPoint = "cblas_sgemm")]
    internal static partial void Sgemm(int order, int transA, int transB, int m, int n, int k,
        float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    [LibraryImport(LibraryName, EntryPoint = "openblas_set_num_threads")]
    internal static partial void SetNumThreads(int threads);

    [LibraryImport(LibraryName, EntryPoint = "openblas_get_num_threads")]
    internal static partial int GetNumThreads();
}
