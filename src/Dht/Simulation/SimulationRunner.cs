using System.Collections.Concurrent;

namespace MoEMesh.Dht.Simulation;

/// <summary>
/// Runs a simulation on the calling thread: every continuation is posted to one queue and run in order;
/// when the queue is empty the <see cref="SimulationClock"/> jumps to its next timer. Code under
/// simulation must not hop to the thread pool: no <c>Task.Run</c>, no <c>ConfigureAwait(false)</c>, no
/// <c>CancelAsync</c>, and no <c>Task.WhenAny</c>/<c>WhenAll</c> over a <c>Task.Delay</c> or a task made
/// with <c>RunContinuationsAsynchronously</c> (their combinator completions are queued to the pool).
/// Awaiting such tasks directly is fine. The Kademlia core follows these rules, and the runner throws if
/// work ever arrives from another thread. A thousand nodes then run in one thread, and a seed fixes the
/// whole run.
/// </summary>
public static class SimulationRunner
{
    /// <summary>Runs <paramref name="body"/> to completion in virtual time and returns its result.</summary>
    /// <exception cref="InvalidOperationException">The body is waiting but no work or timer is left (a deadlock).</exception>
    public static T Run<T>(SimulationClock clock, Func<Task<T>> body)
    {
        var previous = SynchronizationContext.Current;
        var context = new QueueContext();
        SynchronizationContext.SetSynchronizationContext(context);
        try
        {
            var task = body();
            while (true)
            {
                while (context.TryRunOne())
                {
                }
                context.ThrowIfEscaped(clock);
                if (task.IsCompleted) return task.GetAwaiter().GetResult();
                if (!context.HasWork && !FireNextOutsideContext(clock, context))
                    throw new InvalidOperationException($"The simulation is stuck at {clock.Elapsed}: the body waits, but no work is queued and no timer is armed.");
            }
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }
    }

    /// <summary>Runs <paramref name="body"/> to completion in virtual time.</summary>
    public static void Run(SimulationClock clock, Func<Task> body) => Run(clock, async () =>
    {
        await body();
        return true;
    });

    /// <summary>
    /// Fires the next timer with no context current, so every await continuation it releases is posted to
    /// the queue rather than run inline. Inline chains would grow the stack until .NET moves a continuation
    /// to the thread pool to protect it, which would break the single thread.
    /// </summary>
    private static bool FireNextOutsideContext(SimulationClock clock, QueueContext context)
    {
        SynchronizationContext.SetSynchronizationContext(null);
        try
        {
            return clock.FireNext();
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(context);
        }
    }

    private sealed class QueueContext : SynchronizationContext
    {
        // Concurrent only so that work arriving from another thread by mistake is caught, not lost.
        private readonly ConcurrentQueue<(SendOrPostCallback Callback, object? State)> _work = new();
        private readonly int _thread = Environment.CurrentManagedThreadId;
        private volatile bool _escaped;

        public bool HasWork => !_work.IsEmpty;

        public override void Post(SendOrPostCallback d, object? state)
        {
            if (Environment.CurrentManagedThreadId != _thread) _escaped = true;
            _work.Enqueue((d, state));
        }

        /// <summary>
        /// Work that arrives from another thread means code under simulation hopped to the thread pool; the
        /// clock may then have jumped ahead while that work was away, so the run is no longer faithful.
        /// </summary>
        public void ThrowIfEscaped(SimulationClock clock)
        {
            if (_escaped)
                throw new InvalidOperationException($"At {clock.Elapsed} work was posted from another thread: code under simulation left the simulation's thread "
                    + "(Task.Run, ConfigureAwait(false), or a continuation forced asynchronous), so virtual time is no longer faithful.");
        }

        public override void Send(SendOrPostCallback d, object? state) => d(state);

        public override SynchronizationContext CreateCopy() => this;

        public bool TryRunOne()
        {
            if (!_work.TryDequeue(out var item)) return false;
            item.Callback(item.State);
            return true;
        }
    }
}
