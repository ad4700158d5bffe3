using System.Threading.Channels;

namespace MoEMesh.Node.Localnet.Wan;

/// <summary>
/// <c>moemesh localnet link</c>: the link of one <c>--wan</c> node, run inside its network namespace. Each
/// packet the node sends to the testnet's subnet comes through netfilter queue 0; the link loses it or
/// holds it for its delay (what <c>tc netem</c> does, in user space: kernels without sch_netem have
/// netfilter queues).
/// </summary>
internal static class LinkEmulator
{
    /// <summary>Packets that may wait in the kernel for their verdict; beyond that the kernel drops them, as a full router queue would.</summary>
    private const uint MaxWaiting = 16384;

    public static async Task<int> RunAsync(string name, LinkShape shape, int seed, TimeProvider time, TextWriter output, CancellationToken cancellationToken)
    {
        using var queue = NetfilterQueue.Open(0, MaxWaiting);
        long started = time.GetTimestamp();
        var schedule = new LinkSchedule(shape, new Random(seed));
        var due = Channel.CreateUnbounded<(uint Id, TimeSpan At)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        long passed = 0, lost = 0;
        output.WriteLine($"link of {name}: {shape}");
        // A failed release ends the receiving too: no packet could pass any more, so the link ends, saying why.
        using var releaseFailed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var releases = ReleaseAsync(queue, due.Reader, started, time, cancellationToken)
            .ContinueWith(t => { if (t.IsFaulted) releaseFailed.Cancel(); return t; }, TaskScheduler.Default).Unwrap();
        var ids = new List<uint>();
        try
        {
            while (true)
            {
                ids.Clear();
                await queue.ReceiveAsync(ids, releaseFailed.Token);
                var now = time.GetElapsedTime(started);
                foreach (uint id in ids)
                {
                    if (schedule.Release(now) is { } at)
                    {
                        due.Writer.TryWrite((id, at));
                        passed++;
                    }
                    else
                    {
                        queue.Verdict(id, accept: false);
                        lost++;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (releaseFailed.IsCancellationRequested)
        {
            due.Writer.Complete();
            if (!cancellationToken.IsCancellationRequested) await releases; // throws what failed
            await releases.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            output.WriteLine($"link of {name} stopped: {passed + lost} packets, {lost} lost");
            return 0;
        }
    }

    /// <summary>Lets each packet go at its time; they come in the order they leave.</summary>
    private static async Task ReleaseAsync(NetfilterQueue queue, ChannelReader<(uint Id, TimeSpan At)> due, long started, TimeProvider time, CancellationToken cancellationToken)
    {
        await foreach (var (id, at) in due.ReadAllAsync(cancellationToken))
        {
            var wait = at - time.GetElapsedTime(started);
            if (wait > TimeSpan.Zero) await Task.Delay(wait, time, cancellationToken);
            queue.Verdict(id, accept: true);
        }
    }
}
