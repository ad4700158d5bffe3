using MoEMesh.Experts;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.InMemory;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Routing.Calling;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Invocation;
using MoEMesh.Tensors;
using MoEMesh.Testing;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing.Tests;

/// <summary>
/// Hosts dying and networks splitting, on the in-memory transport (real call semantics: a killed node
/// fails calls in flight, a partition swallows them) and a manual clock.
/// </summary>
public sealed class FaultTests
{
    private const int Dim = 4;
    private static readonly ExpertUid A = ExpertUid.Parse("mlp.0"), B = ExpertUid.Parse("mlp.1");

    private sealed class Rig
    {
        public Rig()
        {
            Network = new InMemoryNetwork(Time);
            var registry = ExpertRegistry.CreateDefault();
            Experts["mlp.0"] = registry.Create(new ExpertSpec("mlp", Dim, 6, 1));
            Experts["mlp.1"] = registry.Create(new ExpertSpec("mlp", Dim, 6, 2));
            HostA = new InMemoryExpertHost(Network, "host-a", 1, new Dictionary<string, IExpert> { ["mlp.0"] = Experts["mlp.0"] }, Time);
            HostB = new InMemoryExpertHost(Network, "host-b", 2, new Dictionary<string, IExpert> { ["mlp.1"] = Experts["mlp.1"] }, Time);
            Gating = new PeerAddress("gating", 7000);
            var transport = Network.Join(PeerIdentity.FromSeed(3).PeerId, Gating, new PeerRouter(Time));
            FanOut = new ExpertFanOut(new RemoteExpertInvoker(transport), new LocalExpertInvoker(Experts), new PeerHealth(Options, Time), Options, Time);
        }

        public ManualTimeProvider Time { get; } = new();

        public RoutingOptions Options { get; } = new();

        public InMemoryNetwork Network { get; }

        public Dictionary<string, IExpert> Experts { get; } = [];

        public InMemoryExpertHost HostA { get; }

        public InMemoryExpertHost HostB { get; }

        public PeerAddress Gating { get; }

        public ExpertFanOut FanOut { get; }

        public FanOutRequest Request(Tensor input) => new()
        {
            Input = input,
            // Samples 0 and 1 use both experts; sample 2 only mlp.0.
            Choices = [[new(A, 0.5f), new(B, 0.5f)], [new(A, 0.5f), new(B, 0.5f)], [new(A, 1f)]],
            Hosts = new Dictionary<ExpertUid, IReadOnlyList<Directory.ExpertHostInfo>>
            {
                [A] = [Host(A, HostA)],
                [B] = [Host(B, HostB)],
            },
            Fallback = s => A,
        };

        private static Directory.ExpertHostInfo Host(ExpertUid uid, InMemoryExpertHost host) =>
            new(uid, host.Identity.PeerId, [host.Address], "mlp", "h", new Protocol.Wire.Experts.ExpertLoad(), 0, DateTimeOffset.MaxValue);

        /// <summary>Waits (bounded) until <paramref name="condition"/> holds.</summary>
        public async Task UntilAsync(Func<bool> condition)
        {
            using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            while (!condition()) await Task.Delay(1, limit.Token);
        }

        /// <summary>
        /// Waits (bounded) for <paramref name="work"/> without moving the clock: a killed host's calls fail at
        /// once, so these tests finish on what happened, not on how long anything took.
        /// </summary>
        public static Task<T> FinishAsync<T>(Task<T> work) => work.WaitAsync(TimeSpan.FromMinutes(2));
    }

    [Fact]
    public async Task HostKilledMidForward_ItsSamplesUseTheOtherExpertOrFallBack_InTime()
    {
        var rig = new Rig();
        rig.Network.SetFaults(rig.Gating, rig.HostA.Address, new LinkFaults(Delay: TimeSpan.FromMilliseconds(100)));
        using var input = GradientCheck.Random(new TensorShape(3, Dim), 1);
        var running = rig.FanOut.ForwardAsync(rig.Request(input), default);
        await rig.HostB.ForwardServed.Task.WaitAsync(TimeSpan.FromMinutes(2));
        await rig.Time.WaitForTimersAsync(2, new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token);
        rig.Network.Kill(rig.HostA.Address);
        using var result = await Rig.FinishAsync(running);

        Assert.Contains(result.Trace, t => t.Uid == A && !t.Local && t.Outcome == CallOutcome.Unreachable);
        // Samples 0 and 1 still have mlp.1 (KMin 1); sample 2 had only mlp.0 and falls back to the local mlp.0.
        Assert.Equal([false, false, true], result.FellBack);
        using var expected = rig.Experts["mlp.1"].Forward(input);
        Assert.Equal(expected.Row(0).ToArray(), result.Output.Row(0).ToArray());
    }

    [Fact]
    public async Task HostKilledMidBackward_TheOtherExpertsGradientStands_AndTheTraceSaysWhy()
    {
        var rig = new Rig();
        using var input = GradientCheck.Random(new TensorShape(3, Dim), 2);
        using var forward = await Rig.FinishAsync(rig.FanOut.ForwardAsync(rig.Request(input), default));
        rig.Network.SetFaults(rig.Gating, rig.HostA.Address, new LinkFaults(Delay: TimeSpan.FromMilliseconds(100)));
        using var gradient = GradientCheck.Random(new TensorShape(3, Dim), 3);
        var running = rig.FanOut.BackwardAsync(forward, gradient, frozen: false, default);
        await rig.Time.WaitForTimersAsync(2, new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token);
        rig.Network.Kill(rig.HostA.Address);
        using var backward = await Rig.FinishAsync(running);

        Assert.Contains(backward.Trace, t => t.Uid == A && t.Outcome == CallOutcome.Unreachable);
        // Samples 0 and 1 keep mlp.1's gradient (BackwardKMin 1); sample 2 had only mlp.0 and is incomplete.
        Assert.Equal([false, false, true], backward.Incomplete);
    }

    [Fact]
    public async Task AllRemoteHostsDown_EverySampleIsAnsweredLocally()
    {
        var rig = new Rig();
        rig.Network.Kill(rig.HostA.Address);
        rig.Network.Kill(rig.HostB.Address);
        using var input = GradientCheck.Random(new TensorShape(3, Dim), 4);
        using var result = await Rig.FinishAsync(rig.FanOut.ForwardAsync(rig.Request(input), default));
        Assert.Equal([true, true, true], result.FellBack);
        using var expected = rig.Experts["mlp.0"].Forward(input);
        Assert.Equal(expected.ToArray(), result.Output.ToArray());
    }

    [Fact]
    public async Task PartitionFromHalfTheHosts_FinishesByTheDeadline_AndThoseSamplesFallBack()
    {
        var rig = new Rig();
        rig.Network.Partition([rig.Gating], [rig.HostA.Address]);
        using var input = GradientCheck.Random(new TensorShape(3, Dim), 5);
        var running = rig.FanOut.ForwardAsync(rig.Request(input), default);
        // Once host B's answer is back (its call's timer released), only the fan-out's deadline and the
        // partitioned call's timer are armed: one step to the deadline must finish the fan-out.
        await rig.HostB.ForwardServed.Task.WaitAsync(TimeSpan.FromMinutes(2));
        await rig.UntilAsync(() => rig.Time.ActiveTimers == 2);
        rig.Time.Advance(rig.Options.ForwardTimeout);
        using var result = await running.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal([false, false, true], result.FellBack);
        Assert.Contains(result.Trace, t => t.Uid == A && !t.Local && t.Outcome == CallOutcome.Timeout);
    }
}
