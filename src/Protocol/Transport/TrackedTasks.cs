namespace MoEMesh.Protocol.Transport;

/// <summary>
/// Tasks started and not ended yet (a listener's connections, a reservation's relayed connections), so that
/// disposal can wait for every one of them instead of leaving them fire-and-forget.
/// </summary>
internal sealed class TrackedTasks
{
    private readonly HashSet<Task> _running = [];

    /// <summary>Tasks running now.</summary>
    public int Count
    {
        get
        {
            lock (_running) return _running.Count;
        }
    }

    /// <summary>Tracks <paramref name="task"/> until it ends.</summary>
    public void Add(Task task)
    {
        lock (_running) _running.Add(task);
        _ = task.ContinueWith(t =>
        {
            lock (_running) _running.Remove(t);
        }, TaskScheduler.Default);
    }

    /// <summary>Waits for the tasks running now (callers stop adding first).</summary>
    public Task WhenAllAsync()
    {
        Task[] running;
        lock (_running) running = [.. _running];
        return Task.WhenAll(running);
    }
}
