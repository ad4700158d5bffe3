using MoEMesh.Experts;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.InMemory;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Calling;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Gating;
using MoEMesh.Routing.Invocation;
using MoEMesh.Tensors;
using MoEMesh.Testing;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing.Tests;

/// <summary>
/// A forward is one deadline, whatever peers do: finding experts, calling them and falling back all end by
/// ForwardTimeout (plus FallbackMargin for the fallback). On a manual clock, over the in-memory network.
/// </summary>
public sealed class DeadlineTests
{
    private const int Dim = 4;
    private static readonly ExpertGrid Grid = new("mlp", 2, 2);
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private sealed class Rig
    {
        public Rig()
        {
            var network = new InMemoryNetwork(Time);
            var registry = ExpertRegistry.CreateDefault();
            var experts = new Dictionary<string, IExpert>();
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++)
                    experts[$"mlp.{i}.{j}"] = registry.Create(new ExpertSpec("mlp", Dim, 6, (ulong)(10 * i + j + 1)));
            Host = new InMemoryExpertHost(network, "host", 1, experts, Time);
            var transport = network.Join(PeerIdentity.FromSeed(3).PeerId, new PeerAddress("gating", 7000), new PeerRouter(Time));
            Dht = new MemoryDht(Time);
            Directory = new ExpertDirectory(Dht, Time);
            Local = new GatedLocalInvoker(new LocalExpertInvoker(experts));
            var fanOut = new ExpertFanOut(new RemoteExpertInvoker(transport), Local, new PeerHealth(Options, Time), Options, Time);
            Layer = new MixtureOfExperts(new GatingNetwork(Grid, Dim, seed: 5), new BeamSearch(Directory), Directory, fanOut, new MixtureOfExpertsOptions { K = 2 },
                localExperts: experts.Keys.Select(ExpertUid.Parse).ToArray());
            Network = network;
        }

        public ManualTimeProvider Time { get; } = new();

        public RoutingOptions Options { get; } = new();

        public InMemoryNetwork Network { get; }

        public InMemoryExpertHost Host { get; }

        public MemoryDht Dht { get; }

        public ExpertDirectory Directory { get; }

        public GatedLocalInvoker Local { get; }

        public MixtureOfExperts Layer { get; }

        public Task DeclareAsync() =>
            Directory.DeclareAsync(Host.Identity, Host.Experts.Keys.Select(u => (ExpertUid.Parse(u), Host.Record(new ExpertKind("mlp", Dim).SchemaHash))).ToArray(),
                Time.GetUtcNow() + TimeSpan.FromMinutes(5), default);
    }

    /// <summary>The local experts, whose calls wait at a gate the test opens, and which record the deadlines they were given.</summary>
    private sealed class GatedLocalInvoker(IExpertInvoker inner) : IExpertInvoker
    {
        private int _running;

        public TaskCompletionSource Open { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public List<DateTimeOffset> Deadlines { get; } = [];

        public int Running => Volatile.Read(ref _running);

        public async Task<ExpertCallResult<Tensor>> ForwardAsync(ExpertTarget target, Tensor input, Compression compression, DateTimeOffset deadline, CancellationToken cancellationToken)
        {
            lock (Deadlines) Deadlines.Add(deadline);
            Interlocked.Increment(ref _running);
            await Open.Task.WaitAsync(cancellationToken);
            Interlocked.Decrement(ref _running);
            return await inner.ForwardAsync(target, input, compression, deadline, cancellationToken);
        }

        public Task<ExpertCallResult<Tensor>> BackwardAsync(ExpertTarget target, Tensor input, Tensor outputGradient, bool frozen, Compression compression, DateTimeOffset deadline, CancellationToken cancellationToken) =>
            inner.BackwardAsync(target, input, outputGradient, frozen, compression, deadline, cancellationToken);

        public Task<ExpertCallResult<ExpertInfo>> InfoAsync(ExpertTarget target, DateTimeOffset deadline, CancellationToken cancellationToken) =>
            inner.InfoAsync(target, deadline, cancellationToken);
    }

    private static async Task UntilAsync(Func<bool> condition)
    {
        using var limit = new CancellationTokenSource(Bound);
        while (!condition()) await Task.Delay(1, limit.Token);
    }

    [Fact]
    public async Task DhtThatNeverAnswers_CostsTheForwardItsDiscoveryTimeout_ThenEverySampleFallsBack()
    {
        var rig = new Rig();
        await rig.DeclareAsync();
        rig.Dht.Stalled = true;
        rig.Local.Open.SetResult();
        using var input = GradientCheck.Random(new TensorShape(3, Dim), 1);
        var started = rig.Time.GetUtcNow();
        var forward = rig.Layer.ForwardAsync(input, default);
        await Task.Delay(20);
        Assert.False(forward.IsCompleted);

        rig.Time.Advance(rig.Options.DiscoveryTimeout);
        using var step = await forward.WaitAsync(Bound);
        Assert.Equal([true, true, true], step.Experts.FellBack);
        Assert.All(rig.Local.Deadlines, d => Assert.Equal(started + rig.Options.ForwardTimeout + rig.Options.FallbackMargin, d));
    }

    [Fact]
    public async Task Fallback_RunsEveryLocalExpertAtOnce_UnderTheForwardsOneDeadline()
    {
        var rig = new Rig();
        await rig.DeclareAsync();
        rig.Network.Kill(rig.Host.Address);
        using var input = GradientCheck.Random(new TensorShape(8, Dim), 2);
        var started = rig.Time.GetUtcNow();
        var forward = rig.Layer.ForwardAsync(input, default);

        // The host is down, so samples fall back to the local expert of their best choice: several of them,
        // all waiting at once (a fallback run group after group would start the second only after the first).
        await UntilAsync(() => rig.Local.Running >= 2);
        rig.Local.Open.SetResult();
        using var step = await forward.WaitAsync(Bound);

        Assert.All(step.Experts.FellBack, Assert.True);
        Assert.True(rig.Local.Deadlines.Count >= 2);
        Assert.All(rig.Local.Deadlines, d => Assert.Equal(started + rig.Options.ForwardTimeout + rig.Options.FallbackMargin, d));
    }
}
