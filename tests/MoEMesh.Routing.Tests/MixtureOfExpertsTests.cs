using MoEMesh.Experts;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.InMemory;
using MoEMesh.Protocol.Wire;
using MoEMesh.Routing.Calling;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Gating;
using MoEMesh.Routing.Invocation;
using MoEMesh.Settings;
using MoEMesh.Tensors;
using MoEMesh.Testing;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing.Tests;

/// <summary>The remote MoE layer against an in-process computation of the same weights, over the in-memory transport.</summary>
public sealed class MixtureOfExpertsTests
{
    private const int Dim = 4;
    private static readonly ExpertGrid Grid = new("mlp", 3, 3);

    private sealed record World(MixtureOfExperts Layer, Dictionary<string, IExpert> Experts, GatingNetwork Gate, InMemoryExpertHost? Intruder, InMemoryExpertHost[] Hosts, InMemoryNetwork Network);

    private static readonly ExpertKind Kind = new("mlp", Dim);

    /// <summary>
    /// Nine mlp experts on two hosts. With an <paramref name="intruder"/>, a third host announces those uids
    /// with the schema of width-8 experts (and serves such experts), and the hosts of the real experts no
    /// longer announce the uids in <paramref name="onlyIntruded"/>.
    /// </summary>
    private static async Task<World> BuildAsync(int k, double? topP = null, RouterLossWeights? losses = null, int nullExperts = 0,
        string[]? intruder = null, string[]? onlyIntruded = null, IncompatibleHosts? incompatible = null, string compression = "none")
    {
        var network = new InMemoryNetwork(TimeProvider.System);
        var registry = ExpertRegistry.CreateDefault();
        var experts = new Dictionary<string, IExpert>();
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                experts[$"mlp.{i}.{j}"] = registry.Create(new ExpertSpec("mlp", Dim, 6, (ulong)(10 * i + j + 1)));
        var announced = experts.Where(e => !(onlyIntruded ?? []).Contains(e.Key)).ToDictionary();
        // Two hosts share the grid.
        var first = new InMemoryExpertHost(network, "host-a", 1, announced.Where(e => e.Key.EndsWith(".0") || e.Key.EndsWith(".1")).ToDictionary());
        var second = new InMemoryExpertHost(network, "host-b", 2, announced.Where(e => e.Key.EndsWith(".2")).ToDictionary());
        using var gatingIdentity = PeerIdentity.FromSeed(3);
        var transport = network.Join(gatingIdentity.PeerId, new PeerAddress("gating", 7000), new Protocol.Rpc.PeerRouter(TimeProvider.System));

        var directory = new ExpertDirectory(new MemoryDht(TimeProvider.System));
        var expiration = DateTimeOffset.UtcNow + TimeSpan.FromMinutes(5);
        foreach (var host in new[] { first, second })
            await directory.DeclareAsync(host.Identity, host.Experts.Keys.Select(u => (ExpertUid.Parse(u), host.Record(Kind.SchemaHash))).ToArray(), expiration, default);
        InMemoryExpertHost? third = null;
        if (intruder is not null)
        {
            third = new InMemoryExpertHost(network, "host-c", 4, intruder.ToDictionary(u => u, u => registry.Create(new ExpertSpec("mlp", 2 * Dim, null, 5))));
            var wide = new ExpertKind("mlp", 2 * Dim).SchemaHash;
            await directory.DeclareAsync(third.Identity, intruder.Select(u => (ExpertUid.Parse(u), third.Record(wide))).ToArray(), expiration, default);
        }

        // The system clock here: every expert gets the whole (long) deadline, so a loaded machine cannot cut one.
        var options = new RoutingOptions
        {
            ForwardTimeout = TimeSpan.FromSeconds(20), DiscoveryTimeout = TimeSpan.FromSeconds(10), BackwardTimeout = TimeSpan.FromSeconds(20), GraceAfterKMin = TimeSpan.FromSeconds(20), Compression = compression,
        };
        var fanOut = new ExpertFanOut(new RemoteExpertInvoker(transport), null, new PeerHealth(options, TimeProvider.System), options, TimeProvider.System);
        var gate = new GatingNetwork(Grid, Dim, seed: 99, nullExperts);
        var layer = new MixtureOfExperts(gate, new BeamSearch(directory), directory, fanOut,
            new MixtureOfExpertsOptions { K = k, TopP = topP, RouterLosses = losses, Kind = intruder is null ? null : Kind }, incompatible: incompatible);
        return new World(layer, announced, gate, third, [first, second], network);
    }

    /// <summary>
    /// The same layer computed in one process: exhaustive top-k over all experts and null experts (which
    /// add nothing), softmax over the chosen logits.
    /// </summary>
    private static Tensor InProcess(World world, Tensor input, int k)
    {
        var scores = world.Gate.Forward(input);
        using var nullScores = world.Gate.ForwardNull(input);
        var perSample = GatingNetwork.PerSample(scores);
        var output = Tensor.Zeros(input.Rows, Dim);
        for (int s = 0; s < input.Rows; s++)
        {
            var nulls = nullScores is null ? [] : nullScores.Row(s).ToArray().Select(logit => (Uid: (ExpertUid?)null, Logit: logit));
            var top = world.Experts.Keys.Select(ExpertUid.Parse).Select(u => (Uid: (ExpertUid?)u, Logit: Grid.Score(u, perSample[s])))
                .Concat(nulls).OrderByDescending(x => x.Logit).Take(k).ToArray();
            float max = top.Max(x => x.Logit);
            var exp = top.Select(x => MathF.Exp(x.Logit - max)).ToArray();
            using var row = Tensor.FromSpan(input.Row(s), new TensorShape(1, Dim));
            for (int i = 0; i < top.Length; i++)
            {
                if (top[i].Uid is not { } uid) continue;
                using var y = world.Experts[uid.Value].Forward(row);
                for (int c = 0; c < Dim; c++) output.Row(s)[c] += exp[i] / exp.Sum() * y.Span[c];
            }
        }
        foreach (var t in scores) t.Dispose();
        return output;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task RemoteOutput_EqualsTheInProcessComputation(int k)
    {
        var world = await BuildAsync(k);
        using var input = GradientCheck.Random(new TensorShape(6, Dim), 7);
        using var step = await world.Layer.ForwardAsync(input, default);
        using var expected = InProcess(world, input, k);
        var got = step.Output.ToArray();
        var want = expected.ToArray();
        for (int i = 0; i < want.Length; i++) Assert.True(Math.Abs(got[i] - want[i]) <= 1e-5, $"element {i}: remote {got[i]}, in-process {want[i]}");
        Assert.All(step.Experts.ExpertsPerSample, n => Assert.Equal(k, n));
        Assert.All(step.Experts.FellBack, Assert.False);
    }

    [Theory]
    [InlineData(2, 0)]
    [InlineData(3, 2)]
    public async Task RemoteOutput_WithNullExperts_EqualsTheInProcessComputation(int k, int nullExperts)
    {
        var world = await BuildAsync(k, nullExperts: nullExperts);
        using var input = GradientCheck.Random(new TensorShape(12, Dim), 8, scale: 3f);
        using var step = await world.Layer.ForwardAsync(input, default);
        using var expected = InProcess(world, input, k);
        var got = step.Output.ToArray();
        var want = expected.ToArray();
        for (int i = 0; i < want.Length; i++) Assert.True(Math.Abs(got[i] - want[i]) <= 1e-5, $"element {i}: remote {got[i]}, in-process {want[i]}");
        for (int s = 0; s < 12; s++) Assert.Equal(k, step.ExpertsPerSample.ElementAt(s) + step.Nulls[s].Count);
        if (nullExperts > 0) Assert.Contains(step.Nulls, n => n.Count > 0);
    }

    [Fact]
    public async Task NullExpertsOnly_CostNoCall_AndGiveZeros()
    {
        var world = await BuildAsync(k: 2, nullExperts: 2);
        // A large bias makes both null experts every sample's best two.
        world.Gate.Parameters.Single(p => p.Name == "gate.null.bias").Value.Span.Fill(100f);
        using var input = GradientCheck.Random(new TensorShape(5, Dim), 9);
        using var step = await world.Layer.ForwardAsync(input, default);
        Assert.All(step.Output.ToArray(), v => Assert.Equal(0f, v));
        Assert.All(step.ExpertsPerSample, n => Assert.Equal(0, n));
        Assert.Empty(step.Experts.Trace);
        Assert.All(step.Experts.NullShare, share => Assert.Equal(1f, share));
        using var gradient = GradientCheck.Random(new TensorShape(5, Dim), 10);
        using var inputGradient = await world.Layer.BackwardAsync(step, gradient, default);
        Assert.Equal(input.Shape, inputGradient.Shape);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public async Task Gradients_ThroughTheRemotePath_PassAFiniteDifferenceCheck(int nullExperts)
    {
        var world = await BuildAsync(k: 2, nullExperts: nullExperts);
        using var input = GradientCheck.Random(new TensorShape(3, Dim), 11);
        using var weights = GradientCheck.Random(new TensorShape(3, Dim), 12);
        foreach (var p in world.Gate.Parameters) p.ZeroGradient();
        foreach (var e in world.Experts.Values)
            foreach (var p in e.Parameters) p.ZeroGradient();

        using var step = await world.Layer.ForwardAsync(input, default);
        using var inputGradient = await world.Layer.BackwardAsync(step, weights, default);

        double Loss()
        {
            using var again = world.Layer.ForwardAsync(input, default).GetAwaiter().GetResult();
            return GradientCheck.Dot(again.Output.Span, weights.Span);
        }
        GradientCheck.AssertClose(inputGradient.Span, GradientCheck.Numeric(Loss, input.Span, 1e-2f), 2e-2, "dL/dinput");
        foreach (var gateWeight in world.Gate.Parameters.Where(p => p.Name.EndsWith(".weight")))
            GradientCheck.AssertClose(gateWeight.Gradient.Span, GradientCheck.Numeric(Loss, gateWeight.Value.Span, 1e-2f), 2e-2, $"dL/d{gateWeight.Name}");
    }

    [Fact]
    public async Task RouterLosses_AndUtilisation_AreReportedPerBatch()
    {
        var world = await BuildAsync(k: 2, losses: new RouterLossWeights(0.01f, 0.001f, 0.1f, 0.1f));
        using var input = GradientCheck.Random(new TensorShape(8, Dim), 17);
        using var step = await world.Layer.ForwardAsync(input, default);
        Assert.NotNull(step.RouterLosses);
        Assert.True(step.RouterLosses.LoadBalance > 0f && step.RouterLosses.ZLoss > 0f && step.RouterLosses.MarginalEntropy < 0f && step.RouterLosses.SampleEntropy > 0f);
        // Utilisation is over the whole grid, not over the experts the searches returned.
        Assert.Equal(9, step.Utilisation.GridExperts);
        Assert.Equal(step.Choices.Sum(c => c.Count), step.Utilisation.Load.Values.Sum());
        Assert.InRange(step.Utilisation.ExpertsUsed, 1, 9);
        Assert.True(step.Utilisation.AssignmentEntropy > 0);
        using var gradient = Tensor.Zeros(8, Dim);
        foreach (var p in world.Gate.Parameters) p.ZeroGradient();
        // With a zero output gradient only the router losses move the gate.
        using var _ = await world.Layer.BackwardAsync(step, gradient, default);
        Assert.Contains(world.Gate.Parameters, p => p.Gradient.Span.ToArray().Any(v => v != 0f));
    }

    [Fact]
    public async Task TopP_UsesFewerExpertsWhenTheGateIsSure()
    {
        var world = await BuildAsync(k: 3, topP: 0.5);
        using var input = GradientCheck.Random(new TensorShape(8, Dim), 13, scale: 4f);
        using var step = await world.Layer.ForwardAsync(input, default);
        var used = step.Experts.ExpertsPerSample.ToArray();
        Assert.All(used, n => Assert.InRange(n, 1, 3));
        Assert.True(used.Average() < 3, $"top-p used {string.Join(", ", used)} experts per sample");
    }

    [Fact]
    public async Task IncompatibleReplicas_AreSkippedNeverCalled_CountedAndLoggedOnce()
    {
        var logger = new ListLogger();
        var incompatible = new IncompatibleHosts(logger);
        var all = Enumerable.Range(0, 9).Select(i => $"mlp.{i / 3}.{i % 3}").ToArray();
        var world = await BuildAsync(k: 2, intruder: all, incompatible: incompatible);
        using var input = GradientCheck.Random(new TensorShape(6, Dim), 7);
        for (int round = 0; round < 2; round++)
        {
            using var step = await world.Layer.ForwardAsync(input, default);
            using var expected = InProcess(world, input, 2);
            AssertClose(expected, step.Output);
            Assert.All(step.Experts.Trace, t => Assert.NotEqual(world.Intruder!.Identity.PeerId.ToString(), t.Host));
        }
        Assert.False(world.Intruder!.ForwardServed.Task.IsCompleted, "the incompatible host was called");
        Assert.True(incompatible.Skipped >= 2, $"skipped {incompatible.Skipped} times");
        Assert.Equal(incompatible.Distinct, logger.Lines.Count);
        Assert.All(logger.Lines, l => Assert.Contains(world.Intruder.Identity.PeerId.ToString(), l.Message));
        Assert.All(logger.Lines, l => Assert.Contains("width 4", l.Message));
    }

    [Fact]
    public async Task UidServedOnlyByIncompatibleHosts_IsPassedOverByTheSearch_WhichTakesTheNextBestExpert()
    {
        var incompatible = new IncompatibleHosts();
        string[] intruded = ["mlp.0.0", "mlp.1.1", "mlp.2.2"];
        var world = await BuildAsync(k: 2, intruder: intruded, onlyIntruded: intruded, incompatible: incompatible);
        using var input = GradientCheck.Random(new TensorShape(8, Dim), 21);
        // Over the whole grid the gate would have chosen some of these uids.
        var scores = world.Gate.Forward(input);
        var perSample = GatingNetwork.PerSample(scores);
        foreach (var t in scores) t.Dispose();
        Assert.Contains(perSample, sample => Enumerable.Range(0, 9).Select(i => ExpertUid.Parse($"mlp.{i / 3}.{i % 3}"))
            .OrderByDescending(u => Grid.Score(u, sample)).Take(2).Any(u => intruded.Contains(u.Value)));
        using var step = await world.Layer.ForwardAsync(input, default);
        // The in-process computation over the six compatible experts only.
        using var expected = InProcess(world, input, 2);
        AssertClose(expected, step.Output);
        Assert.All(step.Experts.ExpertsPerSample, n => Assert.Equal(2, n));
        Assert.All(step.Experts.FellBack, Assert.False);
        Assert.False(world.Intruder!.ForwardServed.Task.IsCompleted, "the incompatible host was called");
        Assert.True(incompatible.Distinct > 0);
    }

    [Fact]
    public async Task AHostThatJustFailed_IsPassedOverByTheSearch_SoItsSamplesTakeTheNextBestExperts()
    {
        // The host of mlp.*.2 dies; its records still last (as for up to two update periods in a swarm).
        var world = await BuildAsync(k: 2);
        var dead = world.Hosts[1].Identity.PeerId.ToString();
        world.Network.Kill(world.Hosts[1].Address);
        using var input = GradientCheck.Random(new TensorShape(8, Dim), 31);

        // The first forward finds out: its calls there fail at once (a sample whose experts were all there gets no answer).
        IReadOnlyList<ExpertCallTrace> firstTrace;
        try
        {
            using var first = await world.Layer.ForwardAsync(input, default);
            firstTrace = first.Experts.Trace;
        }
        catch (ExpertCallFailedException e)
        {
            firstTrace = e.Trace;
        }
        Assert.Contains(firstTrace, t => t.Host.Contains(dead, StringComparison.Ordinal) && t.Outcome == Protocol.Rpc.CallOutcome.Unreachable);

        // The next takes the best experts of those whose host can serve: every sample gets two answers, none from the dead host.
        using var step = await world.Layer.ForwardAsync(input, default);
        Assert.All(step.Experts.ExpertsPerSample, n => Assert.Equal(2, n));
        Assert.DoesNotContain(step.Experts.Trace, t => t.Host.Contains(dead, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("fp16", Compression.Float16)]
    [InlineData("8bit", Compression.Blockwise8Bit)]
    public async Task RoutingCompression_IsHowActivationsTravel_AndTheOutputStaysClose(string name, Compression wire)
    {
        var world = await BuildAsync(k: 2, compression: name);
        using var input = GradientCheck.Random(new TensorShape(6, Dim), 7);
        using var step = await world.Layer.ForwardAsync(input, default);
        using var expected = InProcess(world, input, 2);
        Assert.All(world.Hosts.SelectMany(h => h.Compressions), c => Assert.Equal(wire, c));
        Assert.NotEmpty(world.Hosts.SelectMany(h => h.Compressions));
        var got = step.Output.ToArray();
        var want = expected.ToArray();
        for (int i = 0; i < want.Length; i++) Assert.True(Math.Abs(got[i] - want[i]) <= 0.05, $"element {i}: remote {got[i]}, in-process {want[i]}");
    }

    [Theory]
    [InlineData("none", Compression.None)]
    [InlineData("FP16", Compression.Float16)]
    [InlineData("bfloat16", Compression.Bfloat16)]
    [InlineData("8bit", Compression.Blockwise8Bit)]
    public void CompressionNames_Parse(string name, Compression expected) => Assert.Equal(expected, RoutingOptions.ParseCompression(name));

    [Fact]
    public void UnknownCompression_IsRefusedNamingTheChoices() =>
        Assert.Contains("RoutingOptions:Compression: must be one of none, fp16, bf16, 8bit; got 'zip'",
            Assert.Throws<ArgumentException>(() => SettingsValidation.ThrowIfInvalid(new RoutingOptions { Compression = "zip" })).Message);

    private static void AssertClose(Tensor expected, Tensor got)
    {
        var want = expected.ToArray();
        var have = got.ToArray();
        for (int i = 0; i < want.Length; i++) Assert.True(Math.Abs(have[i] - want[i]) <= 1e-5, $"element {i}: remote {have[i]}, in-process {want[i]}");
    }

    [Fact]
    public void BadOptions_StopTheLayerBeingMade_NamingTheSetting()
    {
        var time = new ManualTimeProvider();
        var directory = new ExpertDirectory(new MemoryDht(time), time);
        var routing = new RoutingOptions();
        var fanOut = new ExpertFanOut(new LocalExpertInvoker(new Dictionary<string, IExpert>()), null, new PeerHealth(routing, time), routing, time);
        var e = Assert.Throws<ArgumentException>(() => new MixtureOfExperts(new GatingNetwork(Grid, Dim, seed: 1), new BeamSearch(directory), directory, fanOut,
            new MixtureOfExpertsOptions { K = 0, TopP = 1.5 }));
        Assert.Equal(["MixtureOfExpertsOptions:K: must be at least 1; got 0.", "MixtureOfExpertsOptions:TopP: must be above 0 and at most 1; got 1.5."], e.Message.Split(Environment.NewLine));
    }
}
