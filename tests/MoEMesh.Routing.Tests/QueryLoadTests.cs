using MoEMesh.Experts;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.InMemory;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Routing.Calling;
using MoEMesh.Routing.Invocation;
using MoEMesh.Tensors;
using MoEMesh.Testing;

namespace MoEMesh.Routing.Tests;

/// <summary>
/// A steady load of forwards while hosts are killed, cut off and come back, on the in-memory transport and a
/// manual clock: the clock moves only while a forward waits, and never past its deadline plus 100 ms.
/// </summary>
public sealed class QueryLoadTests
{
    private const int Dim = 4;
    private static readonly ExpertUid A = ExpertUid.Parse("mlp.0"), B = ExpertUid.Parse("mlp.1");
    private static readonly TimeSpan Late = TimeSpan.FromMilliseconds(100);

    [Fact]
    public async Task HostsKilledAndCutOffUnderASteadyLoad_EveryQueryIsAnswered_NoneLaterThanItsDeadlinePlus100Ms()
    {
        var time = new ManualTimeProvider();
        var network = new InMemoryNetwork(time);
        var registry = ExpertRegistry.CreateDefault();
        var experts = new Dictionary<string, IExpert> { ["mlp.0"] = registry.Create(new ExpertSpec("mlp", Dim, 6, 1)), ["mlp.1"] = registry.Create(new ExpertSpec("mlp", Dim, 6, 2)) };
        InMemoryExpertHost Host(string name, int seed, string uid) => new(network, name, seed, new Dictionary<string, IExpert> { [uid] = experts[uid] }, time);
        // Two replicas of each expert, each on a host of its own.
        var a1 = Host("a1", 1, "mlp.0");
        var a2 = Host("a2", 2, "mlp.0");
        var b1 = Host("b1", 3, "mlp.1");
        var b2 = Host("b2", 4, "mlp.1");
        var gating = new PeerAddress("gating", 7000);
        var options = new RoutingOptions();
        var fanOut = new ExpertFanOut(new RemoteExpertInvoker(network.Join(PeerIdentity.FromSeed(9).PeerId, gating, new PeerRouter(time))),
            new LocalExpertInvoker(experts), new PeerHealth(options, time), options, time);
        var disturbances = new Dictionary<int, Action>
        {
            [40] = () => network.Kill(a1.Address),
            [80] = () => network.Partition([gating], [b1.Address]),
            [120] = () => network.Kill(a2.Address),
            [160] = () =>
            {
                network.Heal();
                network.Revive(a1.Address);
                network.Revive(a2.Address);
                // They come back a while later: long enough for the gating node's back-off from them to end.
                time.Advance(options.PeerBackoffMax);
            },
        };

        // Per phase of 40 forwards: those with an answer from a host of mlp.0, of mlp.1, and the samples that fell back.
        var remoteA = new int[5];
        var remoteB = new int[5];
        var fellBack = new int[5];
        for (int i = 0; i < 200; i++)
        {
            if (disturbances.TryGetValue(i, out var disturb)) disturb();
            using var input = GradientCheck.Random(new TensorShape(3, Dim), (ulong)(100 + i));
            var start = time.GetUtcNow();
            using var result = await DriveAsync(time, fanOut.ForwardAsync(Request(input, [a1, a2], [b1, b2]), default), start + options.ForwardTimeout + Late);

            Assert.Equal(3, result.Output.Shape[0]);
            Assert.All(result.Output.ToArray(), v => Assert.True(float.IsFinite(v)));
            Assert.All(result.ExpertsPerSample, n => Assert.True(n >= 1, $"forward {i}: a sample got no answer"));
            int phase = i / 40;
            fellBack[phase] += result.FellBack.Count(f => f);
            if (result.Trace.Any(t => !t.Local && t.Outcome == CallOutcome.Ok && t.Uid == A)) remoteA[phase]++;
            if (result.Trace.Any(t => !t.Local && t.Outcome == CallOutcome.Ok && t.Uid == B)) remoteB[phase]++;
        }

        string seen = $"mlp.0 answered remotely {string.Join("/", remoteA)}, mlp.1 {string.Join("/", remoteB)}, samples fell back {string.Join("/", fellBack)}";
        // With one host of an expert gone or cut off, its other replica answers (a cut-off host costs the forwards
        // that still try it, until the gating node backs off from it).
        Assert.True(remoteA[0] == 40 && remoteA[1] >= 35 && remoteA[2] >= 35 && remoteA[4] >= 35, seen);
        Assert.True(remoteB.All(n => n >= 35), seen);
        // With both hosts of mlp.0 gone, the sample that has only mlp.0 falls back in each forward; the others keep mlp.1's answer.
        Assert.True(remoteA[3] == 0 && fellBack[3] == 40, seen);
    }

    /// <summary>
    /// Moves the clock 10 ms at a time while <paramref name="work"/> is not done, up to <paramref name="limit"/>,
    /// then waits for it without moving the clock: work that needs the clock past its deadline never ends, and
    /// the wait fails. Before each step it lets what can run without the clock run (until the thread pool has
    /// nothing queued, within a bound), so a busy machine moves the clock later, not calls to time out sooner.
    /// </summary>
    private static async Task<T> DriveAsync<T>(ManualTimeProvider time, Task<T> work, DateTimeOffset limit)
    {
        while (!work.IsCompleted && time.GetUtcNow() + TimeSpan.FromMilliseconds(10) <= limit)
        {
            for (int quiet = 0, waits = 0; quiet < 2 && waits < 200 && !work.IsCompleted; waits++)
            {
                await Task.Delay(1);
                quiet = ThreadPool.PendingWorkItemCount == 0 ? quiet + 1 : 0;
            }
            if (!work.IsCompleted) time.Advance(TimeSpan.FromMilliseconds(10));
        }
        try
        {
            return await work.WaitAsync(TimeSpan.FromMinutes(2));
        }
        catch (TimeoutException)
        {
            throw new Xunit.Sdk.XunitException($"the forward was not over by its deadline plus {Late.TotalMilliseconds:F0} ms: it waits for the clock to move further");
        }
    }

    private static FanOutRequest Request(Tensor input, InMemoryExpertHost[] hostsOfA, InMemoryExpertHost[] hostsOfB) => new()
    {
        Input = input,
        Choices = [[new(A, 0.5f), new(B, 0.5f)], [new(A, 0.5f), new(B, 0.5f)], [new(A, 1f)]],
        Hosts = new Dictionary<ExpertUid, IReadOnlyList<Directory.ExpertHostInfo>>
        {
            [A] = hostsOfA.Select(h => Info(A, h)).ToArray(),
            [B] = hostsOfB.Select(h => Info(B, h)).ToArray(),
        },
        Fallback = s => A,
    };

    private static Directory.ExpertHostInfo Info(ExpertUid uid, InMemoryExpertHost host) =>
        new(uid, host.Identity.PeerId, [host.Address], "mlp", "h", new Protocol.Wire.Experts.ExpertLoad(), 0, DateTimeOffset.MaxValue);
}
