namespace MoEMesh.Testing;

/// <summary>
/// A <see cref="TimeProvider"/> whose clock moves only when a test calls <see cref="Advance"/>. Timers
/// fire synchronously inside <see cref="Advance"/> once their due time is reached. Tests can wait
/// until the code under test has armed a timer (<see cref="WaitForTimersAsync"/>) before advancing,
/// which removes the race between "code computes a delay" and "test moves the clock".
/// </summary>
public sealed class ManualTimeProvider : TimeProvider
{
    private readonly object _gate = new();
    private readonly List<ManualTimer> _timers = [];
    private DateTimeOffset _now;
    private long _ticks;
    private TaskCompletionSource _timerArmed = NewSignal();

    /// <summary>Starts the clock at <paramref name="start"/> (default 2026-01-01 UTC).</summary>
    public ManualTimeProvider(DateTimeOffset? start = null)
    {
        _now = start ?? new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    }

    /// <inheritdoc />
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <inheritdoc />
    public override DateTimeOffset GetUtcNow()
    {
        lock (_gate) return _now;
    }

    /// <inheritdoc />
    public override long GetTimestamp()
    {
        lock (_gate) return _ticks;
    }

    /// <summary>Timers armed and not yet fired or disposed.</summary>
    public int ActiveTimers
    {
        get
        {
            lock (_gate) return _timers.Count(t => t.DueAt is not null);
        }
    }

    /// <summary>Moves the clock forward and fires every timer that falls due, in due order.</summary>
    public void Advance(TimeSpan by)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(by, TimeSpan.Zero);
        long target;
        lock (_gate) target = _ticks + by.Ticks;
        while (true)
        {
            ManualTimer? next;
            lock (_gate)
            {
                next = _timers.Where(t => t.DueAt <= target).MinBy(t => t.DueAt);
                if (next is null)
                {
                    _now += TimeSpan.FromTicks(target - _ticks);
                    _ticks = target;
                    return;
                }
                long due = next.DueAt!.Value;
                _now += TimeSpan.FromTicks(due - _ticks);
                _ticks = Math.Max(_ticks, due);
                next.Rearm(_ticks);
            }
            next.Fire();
        }
    }

    /// <summary>Completes once at least <paramref name="count"/> timers are armed.</summary>
    public async Task WaitForTimersAsync(int count, CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Task armed;
            lock (_gate)
            {
                if (_timers.Count(t => t.DueAt is not null) >= count) return;
                armed = _timerArmed.Task;
            }
            await armed.WaitAsync(cancellationToken);
        }
    }

    /// <inheritdoc />
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        lock (_gate) _timers.Add(timer);
        timer.Change(dueTime, period);
        return timer;
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private void OnArmed()
    {
        TaskCompletionSource signal;
        lock (_gate)
        {
            signal = _timerArmed;
            _timerArmed = NewSignal();
        }
        signal.TrySetResult();
    }

    private sealed class ManualTimer(ManualTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        private TimeSpan _period = Timeout.InfiniteTimeSpan;

        /// <summary>Timestamp at which the timer fires next; null when disarmed.</summary>
        public long? DueAt { get; private set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (owner._gate)
            {
                if (!owner._timers.Contains(this)) return false;
                _period = period;
                DueAt = dueTime == Timeout.InfiniteTimeSpan ? null : owner._ticks + Math.Max(0, dueTime.Ticks);
            }
            if (DueAt is not null) owner.OnArmed();
            return true;
        }

        /// <summary>Called under the owner's lock as the timer fires: schedules the next period or disarms.</summary>
        public void Rearm(long now) =>
            DueAt = _period == Timeout.InfiniteTimeSpan || _period == TimeSpan.Zero ? null : now + _period.Ticks;

        public void Fire() => callback(state);

        public void Dispose()
        {
            lock (owner._gate)
            {
                owner._timers.Remove(this);
                DueAt = null;
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
