using MoEMesh.Protocol.Wire.Experts;

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

    private readonly double[] _latencies = new double[Window];
    private int _count, _next, _queued;

    /// <summary>Requests accepted and not yet answered.</summary>
    public int QueueDepth => Volatile.Read(ref _queued);

    /// <summary>A request was accepted.</summary>
    public void Started() => Interlocked.Increment(ref _queued);

    /// <summary>A request was answered (or failed) after <paramref name="elapsed"/>.</summary>
    public void Finished(TimeSpan elapsed)
    {
        Interlocked.Decrement(ref _queued);
        lock (_latencies)
        {
            _latencies[_next] = elapsed.TotalMilliseconds;
            _next = (_next + 1) % Window;
            _count = Math.Min(_count + 1, Window);
        }
    }

    /// <summary>The load as announced: queue depth and latency p50 / p95 (zero before any request).</summary>
    public ExpertLoad Snapshot()
    {
        double[] recent;
        lock (_latencies) recent = _latencies[.._count];
        Array.Sort(recent);
        return new ExpertLoad
        {
            QueueDepth = QueueDepth,
            LatencyP50Ms = Percentile(recent, 0.50),
            LatencyP95Ms = Percentile(recent, 0.95),
        };
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];
}
