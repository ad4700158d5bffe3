namespace MoEMesh.Experts.Runtime;

/// <summary>When queued requests for an expert are run together.</summary>
public sealed class BatchingOptions
{
    /// <summary>Most rows in one batch; a single request may not exceed it. Default 4096, as Hivemind.</summary>
    public int MaxBatchRows { get; set; } = 4096;

    /// <summary>
    /// Longest a request waits for others to join its batch. Default 2 ms: long enough for concurrent
    /// callers' requests to meet, short next to a network round trip.
    /// </summary>
    public TimeSpan MaxWait { get; set; } = TimeSpan.FromMilliseconds(2);

    /// <summary>Throws with the setting named when a value cannot work.</summary>
    public void Validate()
    {
        if (MaxBatchRows < 1) throw new ArgumentException($"Batching MaxBatchRows must be at least 1; got {MaxBatchRows}.");
        if (MaxWait < TimeSpan.Zero || MaxWait > TimeSpan.FromSeconds(10))
            throw new ArgumentException($"Batching MaxWait must be between 0 and 10 s; got {MaxWait}.");
    }
}
