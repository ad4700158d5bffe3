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
        var schedule = new LinkSchedule(shape, new Random(seed));
        var due = Channel.CreateUnbounded<(uint Id, DateTimeOffset At)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        long passed = 0, lost = 0;
        output.WriteLine($"link of {name}: {shape}");
        var releases = ReleaseAsync(queue, due.Reader, time, cancellationToken);
        var ids = new List<uint>();
        try
        {
            while (true)
            {
                ids.Clear();
                await queue.ReceiveAsync(ids, cancellationToken);
                if (releases.IsCompleted) await releases; // it ends only on a failure: no packet could pass, so the link ends with it
                var now = time.GetUtcNow();
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
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            due.Writer.Complete();
            await releases.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            output.WriteLine($"link of {name} stopped: {passed + lost} packets, {lost} lost");
            return 0;
        }
    }

    /// <summary>Lets each packet go at its time; they come in the order they leave.</summary>
    private static async Task ReleaseAsync(NetfilterQueue queue, ChannelReader<(uint Id, DateTimeOffset At)> due, TimeProvider time, CancellationToken cancellationToken)
    {
        await foreach (var (id, at) in due.ReadAllAsync(cancellationToken))
        {
            var wait = at - time.GetUtcNow();
            if (wait > TimeSpan.Zero) await Task.Delay(wait, time, cancellationToken);
            queue.Verdict(id, accept: true);
        }
    }
}
