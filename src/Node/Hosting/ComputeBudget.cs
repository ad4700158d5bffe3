using MoEMesh.Tensors.Gemm;
using Microsoft.Extensions.Logging;

namespace MoEMesh.Node.Hosting;

/// <summary>
/// How a node shares its cores between expert batches: how many batches of different experts run at
/// once, and how many OpenBLAS threads each GEMM uses. Unset, one batch per core (at most one per hosted
/// expert) and the cores split evenly between them, so the two multiplied never exceed the cores: with
/// 2 cores and 4 experts, 2 batches of 1 thread; with one expert, 1 batch of 2 threads. With only the
/// threads set, as many batches as the cores hold at that many threads each. OpenBLAS's thread
/// count is process-wide, so only the node daemon applies it (<see cref="ApplyToProcess"/>).
/// </summary>
public sealed partial class ComputeBudget(int concurrentBatches, int blasThreads)
{
    /// <summary>Batches of different experts that run at once.</summary>
    public int ConcurrentBatches { get; } = concurrentBatches;

    /// <summary>OpenBLAS threads each batch's GEMMs use.</summary>
    public int BlasThreads { get; } = blasThreads;

    /// <summary>The budget the options ask for on a machine with <paramref name="cores"/> cores.</summary>
    public static ComputeBudget Of(NodeOptions options, int cores)
    {
        int experts = options.Experts.Sum(e => e.Uid is null ? e.Count : 1);
        int concurrent = options.Batching.ConcurrentBatches ?? Math.Clamp(Math.Min(experts, cores / (options.BlasThreads ?? 1)), 1, cores);
        return new ComputeBudget(concurrent, options.BlasThreads ?? Math.Max(1, cores / concurrent));
    }

    /// <summary>Whether the batches' threads together outnumber <paramref name="cores"/> (both were set by hand).</summary>
    public bool Oversubscribes(int cores) => ConcurrentBatches * BlasThreads > cores;

    /// <summary>Sets the process's GEMM threads to <see cref="BlasThreads"/> and logs the budget (a warning when it oversubscribes the cores).</summary>
    public void ApplyToProcess(int cores, ILogger logger, string? openBlasPath = null)
    {
        Gemm.Configure(new GemmOptions { Threads = BlasThreads, OpenBlasPath = openBlasPath }, logger);
        if (Oversubscribes(cores)) LogOversubscribed(logger, ConcurrentBatches, BlasThreads, cores);
        else LogBudget(logger, ConcurrentBatches, BlasThreads, cores);
    }

    [LoggerMessage(EventId = 560, Level = LogLevel.Information, Message = "Expert batches: up to {ConcurrentBatches} at once, {BlasThreads} GEMM threads each, on {Cores} cores")]
    private static partial void LogBudget(ILogger logger, int concurrentBatches, int blasThreads, int cores);

    [LoggerMessage(EventId = 561, Level = LogLevel.Warning, Message = "Expert batches: up to {ConcurrentBatches} at once with {BlasThreads} GEMM threads each need more threads than the {Cores} cores, so they slow each other down; lower --concurrent-batches or --blas-threads")]
    private static partial void LogOversubscribed(ILogger logger, int concurrentBatches, int blasThreads, int cores);
}
