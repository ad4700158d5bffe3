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

    /// <summary>
    /// How long, beyond MaxWait, a batch may wait while fewer requests are queued than the expert's last
    /// batch ran: callers that were just answered usually send again at once, and waiting for them makes one
    /// full batch instead of a small one and a large one taking turns. At most a quarter of that last
    /// batch's run time, so a quick expert barely waits; a lone caller never does. Default 5 ms (the
    /// <c>node</c> benchmark's 16 callers sent again within 2 ms too rarely: batches of 76 rows of 128 on
    /// average, against 117-120 with 5 or 10 ms); zero switches it off.
    /// </summary>
    [Linger]
    public TimeSpan Linger { get; set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>
    /// Batches of different experts that run at the same time, so a slow or busy expert does not hold up the
    /// others on its host; an expert still runs one batch at a time. Empty: the node chooses one per core, at
    /// most one per hosted expert (a runtime made directly runs one).
    /// </summary>
    [Count(Max = 256)]
    public int? ConcurrentBatches { get; set; }

    /// <summary>A copy of these options with <see cref="ConcurrentBatches"/> set to <paramref name="count"/>.</summary>
    public BatchingOptions WithConcurrentBatches(int count)
    {
        var copy = (BatchingOptions)MemberwiseClone();
        copy.ConcurrentBatches = count;
        return copy;
    }
}
