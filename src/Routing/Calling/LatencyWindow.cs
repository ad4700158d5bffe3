namespace MoEMesh.Routing.Calling;

/// <summary>
/// The latencies of the last <c>capacity</c> calls, for percentiles: what a gating node keeps per peer
/// (<see cref="PeerHealth"/>) and what a host announces per expert. Safe to use from several threads.
/// </summary>
public sealed class LatencyWindow(int capacity)
{
    private readonly double[] _milliseconds = new double[capacity];
    private int _count, _next;

    /// <summary>Records one call's latency, replacing the oldest once the window is full.</summary>
    public void Add(TimeSpan elapsed)
    {
        lock (_milliseconds)
        {
            _milliseconds[_next] = elapsed.TotalMilliseconds;
            _next = (_next + 1) % _milliseconds.Length;
            _count = Math.Min(_count + 1, _milliseconds.Length);
        }
    }

    /// <summary>The recorded latencies in milliseconds, ascending (take several percentiles from one copy).</summary>
    public double[] Sorted()
    {
        double[] recent;
        lock (_milliseconds) recent = _milliseconds[.._count];
        Array.Sort(recent);
        return recent;
    }

    /// <summary>The <paramref name="p"/> percentile (0 to 1) of <paramref name="sorted"/>, or null when it is empty.</summary>
    public static double? Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? null : sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];
}
