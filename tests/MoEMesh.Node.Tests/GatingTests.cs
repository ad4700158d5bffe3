using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MoEMesh.Experts;
using MoEMesh.Node.Hosting;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Routing;
using MoEMesh.Routing.Gating;
using MoEMesh.Routing.Invocation;
using MoEMesh.Tensors;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Node.Tests;

/// <summary>A gating layer run on a node: its own experts answer without a socket and stand in when remote hosts fail.</summary>
public sealed class GatingTests : IDisposable
{
    private const int Dim = 8;
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static DateTimeOffset Deadline => DateTimeOffset.UtcNow + TimeSpan.FromSeconds(10);

    private static Tensor Input(int rows, int seed)
    {
        var random = new Random(seed);
        return Tensor.FromArray(Enumerable.Range(0, rows * Dim).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray(), new TensorShape(rows, Dim));
    }

    [Fact]
    public async Task TheLayersCalls_ShowInMetrics_ByOutcomeAndHost_InValidExpositionFormat()
    {
        var remoteOptions = TestNode.Configure(_folder.Sub("b"), TestNode.Ffn("metered.1.0"), TestNode.Ffn("metered.1.1"));
        remoteOptions.Serving.OpenTraining = true;
        var remote = await TestNode.StartAsync(remoteOptions, 97);
        var gatingOptions = TestNode.Configure(_folder.Sub("g"), TestNode.Ffn("metered.0.0"));
        gatingOptions.Routing = TestNode.Patient();
        await using var gating = await TestNode.StartAsync(gatingOptions, 98, remote);
        var layer = gating.Node.CreateMixtureOfExperts(new GatingNetwork(new ExpertGrid("metered", 2, 2), Dim, seed: 5), new MixtureOfExpertsOptions { K = 2, RouterLosses = null });
        using var http = new HttpClient { BaseAddress = gating.Http };
        using var input = Input(16, 1);
        string remoteHost;
        int remoteCalls;
        using (var step = await layer.ForwardAsync(input, default))
        {
            var remoteTrace = step.Experts.Trace.Where(t => !t.Local && t.Uid.Value.StartsWith("metered.1.", StringComparison.Ordinal)).ToArray();
            Assert.True(remoteTrace.Length > 0, $"no call reached the remote host; the calls: {string.Join("; ", step.Experts.Trace)}");
            remoteHost = remoteTrace[0].Host;
            remoteCalls = remoteTrace.Length;
            using var gradient = Input(16, 2);
            using var _ = await layer.BackwardAsync(step, gradient, default);
        }

        var metrics = Exposition(await http.GetStringAsync("/metrics"));
        // The remote host is this test's alone, so its figures are exact.
        Assert.Equal(remoteCalls, metrics[$"moemesh_routing_expert_call_duration_count{{direction=\"forward\",host=\"{remoteHost}\"}}"]);
        Assert.Equal(remoteCalls, metrics[$"moemesh_routing_expert_call_duration_count{{direction=\"backward\",host=\"{remoteHost}\"}}"]);
        Assert.True(metrics["moemesh_routing_expert_calls{direction=\"forward\",hedged=\"false\",outcome=\"ok\"}"] >= remoteCalls);
        Assert.True(metrics["moemesh_routing_expert_calls{direction=\"backward\",hedged=\"false\",outcome=\"ok\"}"] >= remoteCalls);
        Assert.True(metrics["moemesh_routing_beam_search_duration_count"] >= 1);
        Assert.True(metrics["moemesh_routing_experts_per_sample_count"] >= 16);

        // The remote host goes: its texts fall back to this node's expert, and the counters say so.
        await remote.DisposeAsync();
        double fallbacks = metrics.GetValueOrDefault("moemesh_routing_expert_calls{direction=\"forward\",hedged=\"false\",outcome=\"fallback\"}");
        using (var step = await layer.ForwardAsync(input, default))
            Assert.Contains(true, step.Experts.FellBack);
        var after = Exposition(await http.GetStringAsync("/metrics"));
        Assert.True(after["moemesh_routing_expert_calls{direction=\"forward\",hedged=\"false\",outcome=\"fallback\"}"] > fallbacks);
        Assert.True(after["moemesh_routing_expert_calls{direction=\"forward\",hedged=\"false\",outcome=\"unreachable\"}"] >= 1);
    }

    /// <summary>The series of a Prometheus text exposition, each line checked against the format.</summary>
    private static Dictionary<string, double> Exposition(string text)
    {
        var series = new Dictionary<string, double>(StringComparer.Ordinal);
        var comment = new System.Text.RegularExpressions.Regex(@"^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|summary|histogram|untyped))$");
        var sample = new System.Text.RegularExpressions.Regex(@"^([a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*=""(\\.|[^""\\])*""(,[a-zA-Z_][a-zA-Z0-9_]*=""(\\.|[^""\\])*"")*\})?) (\S+)$");
        foreach (var line in text.Split('\n').Where(l => l.Length > 0))
        {
            if (comment.IsMatch(line)) continue;
            var match = sample.Match(line);
            Assert.True(match.Success, $"not exposition format: {line}");
            Assert.True(double.TryParse(match.Groups[6].Value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double value)
                || match.Groups[6].Value is "NaN" or "+Inf" or "-Inf", $"not a number: {line}");
            series[match.Groups[1].Value] = value;
        }
        return series;
    }

    [Fact]
    public async Task RemoteHostDown_ItsSamplesFallBackToTheGatingNodesOwnExpert_WhichTrainsInBackward()
    {
        var remoteOptions = TestNode.Configure(_folder.Sub("b"), TestNode.Ffn("gated.1.0"), TestNode.Ffn("gated.1.1"));
        remoteOptions.Serving.OpenTraining = true;
        await using var remote = await TestNode.StartAsync(remoteOptions, 41);
        var gatingOptions = TestNode.Configure(_folder.Sub("g"), TestNode.Ffn("gated.0.0"));
        // Every live expert gets the whole deadline, so what this test sees does not depend on the machine's load.
        gatingOptions.Routing = TestNode.Patient();
        await using var gating = await TestNode.StartAsync(gatingOptions, 42, remote);
        var layer = gating.Node.CreateMixtureOfExperts(new GatingNetwork(new ExpertGrid("gated", 2, 2), Dim, seed: 5), new MixtureOfExpertsOptions { K = 2, RouterLosses = null });
        using var input = Input(16, 1);
        using (var warm = await layer.ForwardAsync(input, default))
            Assert.Contains(warm.Experts.Trace, t => t.Uid.Value.StartsWith("gated.1.") && t.Outcome == CallOutcome.Ok);

        await remote.DisposeAsync();
        using var step = await layer.ForwardAsync(input, default);

        // Every sample is answered by gated.0.0: remotely chosen (this node's own, without a socket) or standing in.
        using var expected = TestNode.Twin("gated.0.0").Forward(input);
        var got = step.Output.ToArray();
        var want = expected.ToArray();
        for (int i = 0; i < want.Length; i++) Assert.True(Math.Abs(got[i] - want[i]) <= 1e-5, $"element {i}: {got[i]}, expected {want[i]}");
        Assert.Contains(true, step.Experts.FellBack);
        Assert.Contains(step.Experts.Trace, t => t.Local && t.Outcome == CallOutcome.Ok);
        Assert.All(step.Experts.Trace.Where(t => t.Uid.Value.StartsWith("gated.1.")), t => Assert.Equal(CallOutcome.Unreachable, t.Outcome));

        using var gradient = Input(16, 2);
        using var inputGradient = await layer.BackwardAsync(step, gradient, default);
        var info = await gating.Node.LocalExperts.InfoAsync(new ExpertTarget(ExpertUid.Parse("gated.0.0"), new PeerEndpoint(gating.Node.ListenAddress)), Deadline, default);
        Assert.True(info.Value!.Version > 0, "the local expert was not stepped");
        Assert.All(inputGradient.ToArray(), v => Assert.True(float.IsFinite(v)));

        // The node found its own announcement of gated.0.0 and called it without a socket: no peer port served it
        // (these uids are this test's alone, since the metrics listener sees every node in the process).
        using var http = new HttpClient { BaseAddress = gating.Http };
        Assert.DoesNotContain("moemesh_node_expert_call_duration_count{expert=\"gated.0.0\"", await http.GetStringAsync("/metrics"));
    }

    [Fact]
    public async Task StragglerCutAfterGrace_ItsCancelReachesTheHost_WhileTheExpertIsStillBusy()
    {
        using var release = new ManualResetEventSlim();
        var registry = ExpertRegistry.CreateDefault();
        registry.Register("blocking", spec => new BlockingExpert(BuiltInExperts.Ffn(spec with { Type = "ffn" }), release));
        try
        {
            await using var fast = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("f"), TestNode.Ffn("cut.0.0")), 44);
            var slowOptions = TestNode.Configure(_folder.Sub("s"), new ExpertHostingOptions { Type = "blocking", Uid = "cut.1.0", HiddenDim = Dim });
            slowOptions.DrainTimeout = TimeSpan.FromMilliseconds(100);
            await using var slow = await TestNode.StartAsync(slowOptions, 45, registry, fast);
            var gatingOptions = TestNode.Configure(_folder.Sub("g"));
            // A long deadline for the fast expert; the default 200 ms grace for the straggler.
            gatingOptions.Routing = TestNode.Patient();
            gatingOptions.Routing.GraceAfterKMin = TimeSpan.FromMilliseconds(200);
            await using var gating = await TestNode.StartAsync(gatingOptions, 46, fast);
            await TestNode.WaitForExpertsAsync(gating.Node, "cut.0.0", "cut.1.0");
            var layer = gating.Node.CreateMixtureOfExperts(new GatingNetwork(new ExpertGrid("cut", 2, 1), Dim, seed: 6), new MixtureOfExpertsOptions { K = 2, RouterLosses = null });
            using var input = Input(4, 4);

            using var step = await layer.ForwardAsync(input, default);

            var cut = Assert.Single(step.Experts.Trace, t => t.Uid.Value == "cut.1.0");
            Assert.Equal(CallOutcome.Timeout, cut.Outcome);
            Assert.Contains("grace", cut.Error);
            Assert.All(step.ExpertsPerSample, n => Assert.Equal(1, n));
            // The host ended the call on the cancel frame, though its expert is still blocked.
            using var http = new HttpClient { BaseAddress = slow.Http };
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (!(await http.GetStringAsync("/metrics", limit.Token)).Contains("moemesh_node_expert_call_duration_count{expert=\"cut.1.0\",method=\"expert.forward\",outcome=\"error\"} 1"))
                await Task.Delay(20, limit.Token);
            Assert.False(release.IsSet);
            // Unblock before the nodes stop: the slow host's compute loop is still inside the expert.
            release.Set();
        }
        finally
        {
            release.Set();
        }
    }

    /// <summary>An expert whose forward blocks until released: a host that is busy for as long as a test needs.</summary>
    private sealed class BlockingExpert(IExpert inner, ManualResetEventSlim release) : IExpert
    {
        public ExpertSchema Schema => inner.Schema;

        public IReadOnlyList<Parameter> Parameters => inner.Parameters;

        public Tensor Forward(Tensor input)
        {
            release.Wait(TimeSpan.FromSeconds(30));
            return inner.Forward(input);
        }

        public Tensor Backward(Tensor input, Tensor outputGradient) => inner.Backward(input, outputGradient);
    }

    [Fact]
    public async Task GatingLayerOnANodeNotStarted_IsRefusedWithAClearError()
    {
        await using var app = NodeHost.Build(TestNode.Configure(_folder.Sub("n")), PeerIdentity.FromSeed(47), l => l.ClearProviders());
        var node = app.Services.GetRequiredService<MeshNode>();
        var e = Assert.Throws<InvalidOperationException>(() => node.CreateMixtureOfExperts(new GatingNetwork(new ExpertGrid("ffn", 2), Dim, 1), new MixtureOfExpertsOptions()));
        Assert.Contains("has not started", e.Message);
    }

    [Fact]
    public async Task LocalExperts_RejectBadCallsNamingWhatWasWrong_AndKeepTheirDeadline()
    {
        await using var node = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("a"), TestNode.Ffn("ffn.0.0")), 43);
        var local = node.Node.LocalExperts;
        var here = new PeerEndpoint(node.Node.ListenAddress);
        using var input = Input(3, 3);

        var unknown = await local.ForwardAsync(new ExpertTarget(ExpertUid.Parse("ffn.9.9"), here), input, Compression.None, Deadline, default);
        Assert.Equal(CallOutcome.Rejected, unknown.Outcome);
        Assert.Contains("ffn.9.9 is not hosted", unknown.Error);

        using var wide = Tensor.Zeros(3, Dim + 1);
        var misshapen = await local.ForwardAsync(new ExpertTarget(ExpertUid.Parse("ffn.0.0"), here), wide, Compression.None, Deadline, default);
        Assert.Equal(CallOutcome.Rejected, misshapen.Outcome);
        Assert.Contains("ffn.0.0", misshapen.Error);

        var late = await local.ForwardAsync(new ExpertTarget(ExpertUid.Parse("ffn.0.0"), here), input, Compression.None, DateTimeOffset.UtcNow - TimeSpan.FromSeconds(1), default);
        Assert.Equal(CallOutcome.Timeout, late.Outcome);

        var ok = await local.ForwardAsync(new ExpertTarget(ExpertUid.Parse("ffn.0.0"), here), input, Compression.None, Deadline, default);
        using var output = ok.Value!;
        using var expected = TestNode.Twin("ffn.0.0").Forward(input);
        Assert.Equal(expected.ToArray(), output.ToArray());
    }
}
