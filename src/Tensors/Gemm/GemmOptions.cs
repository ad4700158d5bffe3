namespace MoEMesh.Tensors.Gemm;

/// <summary>How the GEMM backend is chosen.</summary>
public sealed class GemmOptions
{
    /// <summary>Threads for GEMM; null keeps OpenBLAS's default (all cores) or one per core for the managed kernel.</summary>
    public int? Threads { get; set; }

    /// <summary>A path to the OpenBLAS library to try before the usual names; null to probe only.</summary>
    public string? OpenBlasPath { get; set; }

    /// <summary>Use the managed kernel even when OpenBLAS is present (for comparisons and debugging).</summary>
    public bool ForceManaged { get; set; }
}
