using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Calling;

namespace MoEMesh.Node.Serving;

/// <summary>
/// How busy one hosted expert is: requests accepted and not yet answered, the latency (arrival to answer)
/// of the last <see cref="Window"/> requests, and the rows it served over the last minute. Announced in the
/// expert's DHT record and shown on the status page (the rows make its utilisation heat map), so gating
/// nodes can prefer lightly loaded replicas.
/// </summary>
internal sealed class ExpertLoadTracker(TimeProvider time)
{
    /// <summary>Requests the latency percentiles are taken over.</summary>
    public const int Window = 256;

    /// <summary>The rows are counted in slots of this length; a minute's worth of them is summed.</summary>
    private static readonly TimeSpan Slot = TimeSpan.FromSeconds(5);

    private static readonly int Slots = (int)(TimeSpan.FromMinutes(1) / Slot);

    private readonly LatencyWindow _latencies = new(Window);
    private readonly long[] _rows = new long[Slots];
    private readonly long[] _slotOf = new long[Slots];
    private readonly long _started = time.GetTimestamp();
    private int _queued;

    /// <summary>Requests accepted and not yet answered.</summary>
    public int QueueDepth => Volatile.Read(ref _queued);

    /// <summary>A request was accepted.</summary>
    public void Started() => Interlocked.Increment(ref _queued);

    /// <summary>A request of <paramref name="rows"/> rows was answered (or failed) after <paramref name="elapsed"/>.</summary>
    public void Finished(TimeSpan elapsed, int rows)
    {
        Interlocked.Decrement(ref _queued);
        _latencies.Add(elapsed);
        long slot = CurrentSlot();
        lock (_rows)
        {
            int at = (int)(slot % Slots);
            if (_slotOf[at] != slot) (_slotOf[at], _rows[at]) = (slot, 0);
            _rows[at] += rows;
        }
    }

    /// <summary>Rows served over the last minute (the current slot included).</summary>
    public long RowsLastMinute
    {
        get
        {
            long slot = CurrentSlot(), rows = 0;
            lock (_rows)
            {
                for (int i = 0; i < Slots; i++)
                    if (_slotOf[i] > slot - Slots) rows += _rows[i];
            }
            return rows;
        }
    }

    /// <summary>The load as announced: queue depth, latency p50 / p95 (zero before any request) and rows over the last minute.</summary>
    public ExpertLoad Snapshot()
    {
        var recent = _latencies.Sorted();
        return new ExpertLoad
        {
            QueueDepth = QueueDepth,
            LatencyP50Ms = LatencyWindow.Percentile(recent, 0.50) ?? 0,
            LatencyP95Ms = LatencyWindow.Percentile(recent, 0.95) ?? 0,
            RowsLastMinute = RowsLastMinute,
        };
    }

    // Slots count from 1, so the zeroed slot table reads as "nothing counted yet".
    private long CurrentSlot() => 1 + time.GetElapsedTime(_started).Ticks / Slot.Ticks;
}
