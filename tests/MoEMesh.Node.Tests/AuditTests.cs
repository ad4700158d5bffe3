using MoEMesh.Experts;
using MoEMesh.Node.Hosting;
using MoEMesh.Routing;
using MoEMesh.Routing.Gating;
using MoEMesh.Tensors;

namespace MoEMesh.Node.Tests;

/// <summary>
/// Checkable correctness over real sockets: four hosts serve the same weights of a 2x2 grid (one trained it
/// and published, three adopted its snapshots); one of them perturbs every answer. A gating node that audits
/// every answer flags that host within a bounded number of calls, and then calls it no more.
/// </summary>
[Collection(SwarmsOfTheirOwn.Name)]
public sealed class AuditTests : IDisposable
{
    private const int Dim = 16;
    private static readonly string[] Uids = ["ffn.0.0", "ffn.0.1", "ffn.1.0", "ffn.1.1"];
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>An ffn whose answers are all off by 0.01: a host serving other weights than it announces.</summary>
    private sealed class PerturbedExpert(IExpert inner) : IExpert
    {
        public ExpertSchema Schema => inner.Schema;

        public IReadOnlyList<Parameter> Parameters => inner.Parameters;

        public Tensor Forward(Tensor input)
        {
            var output = inner.Forward(input);
            foreach (ref float v in output.Span) v += 0.01f;
            return output;
        }

        public Tensor Backward(Tensor input, Tensor outputGradient) => inner.Backward(input, outputGradient);
    }

    private NodeOptions Options(string name, bool trainable, bool hosts = true)
    {
        var options = TestNode.Configure(_folder.Sub(name), hosts ? Uids.Select(u => TestNode.Ffn(u, Dim)).ToArray() : []);
        options.Serving.OpenTraining = trainable;
        options.Weights.PublishPeriod = options.Weights.ReconcilePeriod = TimeSpan.FromHours(1);
        return options;
    }

    [Fact]
    public async Task AHostAnsweringUnlikeItsReplicas_IsFlaggedWithinBoundedCalls_AndGetsNoMoreTraffic()
    {
        await using var trainer = await TestNode.StartAsync(Options("t", trainable: true), 41);
        var random = new Random(1);
        foreach (var uid in Uids)
        {
            using var x = Tensor.FromArray(Enumerable.Range(0, 4 * Dim).Select(_ => (float)random.NextDouble()).ToArray(), new TensorShape(4, Dim));
            using var g = Tensor.FromArray(Enumerable.Range(0, 4 * Dim).Select(_ => (float)random.NextDouble()).ToArray(), new TensorShape(4, Dim));
            trainer.Node.Experts[uid].Backend.Backward(x, g).Dispose();
        }
        Assert.Equal(4, (await trainer.Node.PublishWeightsAsync(default)).Count);
        await using var b = await TestNode.StartAsync(Options("b", false), 42, trainer);
        await using var c = await TestNode.StartAsync(Options("c", false), 43, trainer);
        var perturbing = new ExpertRegistry();
        perturbing.Register("ffn", spec => new PerturbedExpert(BuiltInExperts.Ffn(spec)));
        await using var liar = await TestNode.StartAsync(Options("l", false), 44, perturbing, trainer);
        foreach (var node in new[] { b, c, liar })
            Assert.All(Uids, u => Assert.Equal(trainer.Node.Experts[u].CurrentSnapshot, node.Node.Experts[u].CurrentSnapshot));

        var gatingOptions = Options("g", false, hosts: false);
        gatingOptions.Routing = new RoutingOptions { AuditShare = 1, ForwardTimeout = TimeSpan.FromSeconds(20), DiscoveryTimeout = TimeSpan.FromSeconds(10), GraceAfterKMin = TimeSpan.FromSeconds(20) };
        await using var gating = await TestNode.StartAsync(gatingOptions, 45, trainer);
        var layer = gating.Node.CreateMixtureOfExperts(new GatingNetwork(new ExpertGrid("ffn", 2, 2), Dim, seed: 5), new MixtureOfExpertsOptions { K = 2, RouterLosses = null });
        using var input = Tensor.FromArray(Enumerable.Range(0, 8 * Dim).Select(i => (float)Math.Cos(i)).ToArray(), new TensorShape(8, Dim));

        // Every answer is audited against two of the other three hosts, chosen at random: within 40 forwards
        // (80 answers) the liar is checked with near certainty.
        int calls = 0;
        for (; calls < 40 && !gating.Node.Health.IsFlagged(liar.Node.PeerId); calls++)
        {
            using var step = await layer.ForwardAsync(input, default);
            await Task.Delay(50); // lets the background audits of this forward report before the next is sent
        }
        for (var until = DateTime.UtcNow.AddSeconds(30); !gating.Node.Health.IsFlagged(liar.Node.PeerId) && DateTime.UtcNow < until;) await Task.Delay(100);
        Assert.True(gating.Node.Health.IsFlagged(liar.Node.PeerId), $"the perturbing host was not flagged after {calls} forwards");
        Assert.Equal([liar.Node.PeerId], gating.Node.Health.Flagged.Select(f => f.Host));

        // Flagged, it is routed around: no call reaches it.
        for (int i = 0; i < 10; i++)
        {
            using var step = await layer.ForwardAsync(input, default);
            Assert.DoesNotContain(step.Experts.Trace, t => t.Host == liar.Node.PeerId.ToString());
        }
        using var http = new HttpClient { BaseAddress = gating.Http };
        var audits = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/v1/status")).RootElement.GetProperty("audits");
        Assert.Equal(liar.Node.PeerId.ToString(), audits.GetProperty("flagged")[0].GetProperty("peerId").GetString());
        Assert.True(audits.GetProperty("compared").GetInt64() > 0);
    }
}
