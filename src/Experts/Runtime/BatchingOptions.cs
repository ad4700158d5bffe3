using MoEMesh.Settings;

namespace MoEMesh.Experts.Runtime;

/// <summary>When queued requests for an expert are run together.</summary>
public sealed class BatchingOptions
{
    /// <summary>Most rows in one batch; a single request may not exceed it. Default 4096, as Hivemind.</summary>
    [Count]
    public int MaxBatchRows { get; set; } = 4096;

    /// <summary>
    /// Longest a request waits on purpose for others to join its batch. Default 0: run what is queued at
    /// once; requests that arrive while a batch runs are batched together next, so concurrent callers still
    /// share batches. A deliberate wait added its length to every call: with 2 ms, a mixture-of-experts
    /// forward over four hosts ran at 4,959 samples/s, with 0 at 8,651 (the <c>moe</c> benchmark), and 16
    /// concurrent callers were served no worse (the <c>node</c> benchmark).
    /// </summary>
    [Linger]
    public TimeSpan MaxWait { get; set; } = TimeSpan.Zero;
}
