namespace MoEMesh.Dht.Simulation;

/// <summary>
/// Virtual time for a simulated swarm: the clock stands still while there is work to run and jumps to
/// the next timer when there is none (see <see cref="SimulationRunner"/>). Timers due at the same
/// instant fire in the order they were armed, so a run repeats exactly.
/// </summary>
public sealed class SimulationClock : TimeProvider
{
    private readonly PriorityQueue<(VirtualTimer Timer, long Version), (long Due, long Sequence)> _queue = new();
    private readonly DateTimeOffset _start;
    private long _now;
    private long _sequence;

    /// <summary>Starts the clock at <paramref name="start"/> (default 2026-01-01 UTC).</summary>
    public SimulationClock(DateTimeOffset? start = null) => _start = start ?? new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Virtual time since the start.</summary>
    public TimeSpan Elapsed => TimeSpan.FromTicks(_now);

    /// <inheritdoc />
    public override DateTimeOffset GetUtcNow() => _start + TimeSpan.FromTicks(_now);

    /// <inheritdoc />
    public override long GetTimestamp() => _now;

    /// <inheritdoc />
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <inheritdoc />
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new VirtualTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>Moves the clock to the next armed timer and fires it; false when none is armed.</summary>
    internal bool FireNext()
    {
        while (_queue.TryDequeue(out var entry, out var due))
        {
            var (timer, version) = entry;
            if (timer.Version != version) continue;
            _now = Math.Max(_now, due.Due);
            timer.Fire();
            return true;
        }
        return false;
    }

    private void Schedule(VirtualTimer timer, long due) => _queue.Enqueue((timer, timer.Version), (due, _sequence++));

    private sealed class VirtualTimer(SimulationClock clock, TimerCallback callback, object? state) : ITimer
    {
        private TimeSpan _period = Timeout.InfiniteTimeSpan;
        private bool _disposed;

        /// <summary>Bumped on every change, so queue entries of earlier arrangements are skipped.</summary>
        public long Version { get; private set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            if (_disposed) return false;
            Version++;
            _period = period;
            if (dueTime != Timeout.InfiniteTimeSpan) clock.Schedule(this, clock._now + Math.Max(0, dueTime.Ticks));
            return true;
        }

        public void Fire()
        {
            Version++;
            if (_period != Timeout.InfiniteTimeSpan && _period > TimeSpan.Zero) clock.Schedule(this, clock._now + _period.Ticks);
            callback(state);
        }

        public void Dispose()
        {
            _disposed = true;
            Version++;
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
