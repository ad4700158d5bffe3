using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MoEMesh.Tensors.Gemm;

/// <summary>
/// Chooses the GEMM backend once per process and offers tensor-level matrix products on top of it.
/// OpenBLAS is used when found; otherwise the managed kernel takes over and one log line says so.
/// </summary>
public static partial class Gemm
{
    private static readonly object Gate = new();
    private static GemmBackend? _default;

    /// <summary>
    /// The process-wide backend, chosen on first use with default options unless <see cref="Configure"/>
    /// ran first.
    /// </summary>
    public static GemmBackend Default
    {
        get
        {
            lock (Gate) return _default ??= Select(new GemmOptions(), NullLogger.Instance);
        }
    }

    /// <summary>Chooses the process-wide backend from options, logging the choice. Call once at start-up.</summary>
    public static GemmBackend Configure(GemmOptions options, ILogger logger)
    {
        lock (Gate) return _default = Select(options, logger);
    }

    /// <summary>Chooses a backend without changing the process-wide one.</summary>
    public static GemmBackend Select(GemmOptions options, ILogger logger) => Select(options, logger, LoadOpenBlas);

    /// <summary>The choice itself, with the OpenBLAS loader injected so tests can take the fallback branch.</summary>
    internal static GemmBackend Select(GemmOptions options, ILogger logger, Func<GemmOptions, (OpenBlasGemm? Backend, string Tried)> loadOpenBlas)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Threads is < 1)
            throw new ArgumentException($"GEMM Threads must be at least 1; got {options.Threads}.", nameof(options));
        var managed = new ManagedGemm(options.Threads ?? Environment.ProcessorCount);
        if (options.ForceManaged) return managed;
        var (blas, tried) = loadOpenBlas(options);
        if (blas is not null)
        {
            if (options.OpenBlasPath is { } named && blas.Library != named) LogNamedOpenBlasMissing(logger, named, blas.Library);
            LogOpenBlas(logger, blas.Library, blas.Threads);
            return blas;
        }
        LogManagedFallback(logger, tried, managed.Threads, OpenBlasLibrary.InstallHint);
        return managed;
    }

    private static (OpenBlasGemm?, string) LoadOpenBlas(GemmOptions options)
    {
        var backend = OpenBlasGemm.TryCreate(options.Threads, options.OpenBlasPath, out var tried);
        return (backend, tried);
    }

    /// <summary>
    /// <c>c = alpha · op(a) · op(b) + beta · c</c> for tensors viewed as matrices (rows × row length).
    /// </summary>
    public static void MatMul(this GemmBackend backend, Tensor a, bool transposeA, Tensor b, bool transposeB,
        Tensor c, float alpha = 1f, float beta = 0f)
    {
        int m = transposeA ? a.RowLength : a.Rows, k = transposeA ? a.Rows : a.RowLength;
        int kb = transposeB ? b.RowLength : b.Rows, n = transposeB ? b.Rows : b.RowLength;
        if (k != kb)
            throw new ArgumentException($"Matrix product of {a.Shape}{(transposeA ? "ᵀ" : "")} and {b.Shape}{(transposeB ? "ᵀ" : "")}: inner dimensions {k} and {kb} differ.");
        if (c.Rows != m || c.RowLength != n)
            throw new ArgumentException($"Matrix product result should be {m} × {n}; the output tensor is {c.Shape}.");
        backend.Sgemm(transposeA, transposeB, m, n, k, alpha, a.Span, a.RowLength, b.Span, b.RowLength, beta, c.Span, n);
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "GEMM backend: OpenBLAS from {Library} with {Threads} threads")]
    private static partial void LogOpenBlas(ILogger logger, string library, int threads);

    /// <summary>What the managed kernel costs, measured (src/Tensors/README.md): said where it is chosen.</summary>
    public const string ManagedCost = "about 5x slower than OpenBLAS on large products (an expert's batch of 256 rows), about the same at a few rows";

    /// <summary>How to install OpenBLAS on this platform.</summary>
    public static string OpenBlasInstallHint => OpenBlasLibrary.InstallHint;

    /// <summary>The OpenBLAS file names and paths tried on this platform.</summary>
    public static IReadOnlyList<string> OpenBlasCandidates => OpenBlasLibrary.CandidateNames;

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "The OpenBLAS library named ({Named}) does not load; using {Library} instead")]
    private static partial void LogNamedOpenBlasMissing(ILogger logger, string named, string library);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "OpenBLAS not found (tried {Tried}); GEMM uses the managed TensorPrimitives kernel with {Threads} threads, " + ManagedCost + ". For full speed install OpenBLAS: {Install}")]
    private static partial void LogManagedFallback(ILogger logger, string tried, int threads, string install);
}
