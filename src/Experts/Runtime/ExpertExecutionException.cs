namespace MoEMesh.Experts.Runtime;

/// <summary>An expert failed while running a batch; every request of that batch, and only those, gets this.</summary>
public sealed class ExpertExecutionException : Exception
{
    /// <summary>Creates the exception with its context.</summary>
    public ExpertExecutionException(string expert, BatchKind kind, int requests, int rows, Exception inner)
        : base($"Expert {expert} failed in {kind.ToString().ToLowerInvariant()} on a batch of {requests} requests ({rows} rows): {inner.Message}", inner)
    {
        Expert = expert;
        Kind = kind;
        Rows = rows;
    }

    /// <summary>The expert's uid.</summary>
    public string Expert { get; }

    /// <summary>The pass that failed.</summary>
    public BatchKind Kind { get; }

    /// <summary>Rows in the failed batch.</summary>
    public int Rows { get; }
}
