namespace MoEMesh.Routing.Calling;

/// <summary>One expert call of a fan-out, finished: the samples it carried, its answer when it gave one, and its trace line.</summary>
internal sealed record FinishedCall<T>(int[] Samples, T? Answer, ExpertCallTrace Trace) where T : class, IDisposable;

/// <summary>
/// The waiting shared by forward and backward: run every call, stop at the deadline, and once every
/// sample has its KMin answers (or no call left that could give it more) allow GraceAfterKMin more, then
/// cancel what is still running. Cancelled calls end at once (their invokers send cancel frames) and
/// are traced; nothing is left running when this returns.
/// </summary>
public sealed partial class ExpertFanOut
{
    private async Task<List<FinishedCall<T>>> CollectAsync<T>(IEnumerable<(int[] Samples, Func<CancellationToken, Task<FinishedCall<T>>> Start)> calls, int[] kmin,
        TimeSpan timeout, CancellationToken cancellationToken) where T : class, IDisposable
    {
        var answered = new int[kmin.Length];
        var open = new int[kmin.Length];
        var done = new List<FinishedCall<T>>();
        using var stragglers = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var pending = new List<Task<FinishedCall<T>>>();
        foreach (var (samples, start) in calls)
        {
            foreach (int s in samples) open[s]++;
            pending.Add(start(stragglers.Token));
        }
        // Timers complete plain TaskCompletionSources: fine on any clock, including a test's manual one.
        var deadlineHit = new TaskCompletionSource();
        var graceOver = new TaskCompletionSource();
        ITimer? graceTimer = null;
        using (time.CreateTimer(static s => ((TaskCompletionSource)s!).TrySetResult(), deadlineHit, timeout, Timeout.InfiniteTimeSpan))
        {
            try
            {
                while (pending.Count > 0)
                {
                    var first = await Task.WhenAny(pending.Cast<Task>().Append(deadlineHit.Task).Append(graceOver.Task));
                    if (first is not Task<FinishedCall<T>> call) break;
                    pending.Remove(call);
                    var outcome = await call;
                    done.Add(outcome);
                    foreach (int s in outcome.Samples)
                    {
                        open[s]--;
                        if (outcome.Answer is not null) answered[s]++;
                    }
                    if (graceTimer is null && Enumerable.Range(0, kmin.Length).All(s => answered[s] >= kmin[s] || open[s] == 0))
                        graceTimer = time.CreateTimer(static s => ((TaskCompletionSource)s!).TrySetResult(), graceOver, options.GraceAfterKMin, Timeout.InfiniteTimeSpan);
                }
            }
            finally
            {
                if (graceTimer is not null) await graceTimer.DisposeAsync();
                stragglers.Cancel();
                done.AddRange(await Task.WhenAll(pending));
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        return done;
    }
}
