using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Calling;

namespace MoEMesh.Node.Serving;

/// <summary>
/// How busy one hosted expert is: requests accepted and not yet answered, and the latency (arrival to
/// answer) of the last <see cref="Window"/> requests. Announced in the expert's DHT record and shown on
/// the status page, so gating nodes can prefer lightly loaded replicas.
/// </summary>
internal sealed class ExpertLoadTracker
{
    /// <summary>Requests the latency percentiles are taken over.</summary>
    public const int Window = 256;

    private readonly LatencyWindow _latencies = new(Window);
    private int _queued;

    /// <summary>Requests accepted and not yet answered.</summary>
    public int QueueDepth => Volatile.Read(ref _queued);

    /// <summary>A request was accepted.</summary>
    public void Started() => Interlocked.Increment(ref _queued);

    /// <summary>A request was answered (or failed) after <paramref name="elapsed"/>.</summary>
    public void Finished(TimeSpan elapsed)
    {
        Interlocked.Decrement(ref _queued);
        _latencies.Add(elapsed);
    }

    /// <summary>The load as announced: queue depth and latency p50 / p95 (zero before any request).</summary>
    public ExpertLoad Snapshot()
    {
        var recent = _latencies.Sorted();
        return new ExpertLoad
        {
            QueueDepth = QueueDepth,
            LatencyP50Ms = LatencyWindow.Percentile(recent, 0.50) ?? 0,
            LatencyP95Ms = LatencyWindow.Percentile(recent, 0.95) ?? 0,
        };
    }
}
