using Microsoft.Extensions.Logging;

namespace MoEMesh.Dht.Node;

/// <summary>
/// Tracks the node's own background tasks (store-on-join hand-offs, pings before eviction, shared
/// searches) so none is fire-and-forget: failures are logged and disposal waits for all of them. Work
/// starts on the caller's context (no thread hop), which keeps a simulation deterministic.
/// </summary>
internal sealed partial class BackgroundWork(ILogger logger)
{
    private readonly HashSet<Task> _running = [];

    public int Count
    {
        get
        {
            lock (_running) return _running.Count;
        }
    }

    public void Run(string what, Func<Task> work)
    {
        var task = Observe(what, work);
        if (task.IsCompleted) return;
        lock (_running) _running.Add(task);
        _ = task.ContinueWith(t =>
        {
            lock (_running) _running.Remove(t);
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Waits until no tracked work is left.</summary>
    public async Task DrainAsync()
    {
        while (true)
        {
            Task[] running;
            lock (_running) running = [.. _running];
            if (running.Length == 0) return;
            await Task.WhenAll(running);
        }
    }

    private async Task Observe(string what, Func<Task> work)
    {
        try
        {
            await work();
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            LogFailed(logger, e, what);
        }
    }

    [LoggerMessage(EventId = 400, Level = LogLevel.Warning, Message = "DHT background work '{Work}' failed")]
    private static partial void LogFailed(ILogger logger, Exception exception, string work);
}
