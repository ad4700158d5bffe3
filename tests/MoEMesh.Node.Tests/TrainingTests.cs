using MoEMesh.Node.Hosting;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Routing;
using MoEMesh.Routing.Gating;
using MoEMesh.Routing.Invocation;
using MoEMesh.Routing.Models;
using MoEMesh.Tensors.Layers;
using MoEMesh.Tensors.Optimizers;

namespace MoEMesh.Node.Tests;

/// <summary>A gating node trains the whole model against experts hosted by other nodes, over real sockets.</summary>
public sealed class TrainingTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private const int Dim = 16, Classes = 4;
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static ExpertHostingOptions Expert(string uid) => new() { Type = "ffn", Uid = uid, HiddenDim = Dim, Optimizer = "adam", LearningRate = 3e-3f };

    /// <summary>Class c is told by its own tokens; every sample also carries noise tokens shared by all classes.</summary>
    private static (IReadOnlyList<string>[] Samples, int[] Labels) Batch(Random random, int size)
    {
        var samples = new IReadOnlyList<string>[size];
        var labels = new int[size];
        for (int i = 0; i < size; i++)
        {
            int c = random.Next(Classes);
            labels[i] = c;
            samples[i] = Enumerable.Range(0, 4).Select(_ => $"c{c}-t{random.Next(10)}").Concat(Enumerable.Range(0, 2).Select(_ => $"noise-{random.Next(50)}")).ToArray();
        }
        return (samples, labels);
    }

    [Fact]
    public async Task GatingNode_TrainsTheModelAgainstRemoteExperts_AndTheLossFalls()
    {
        await using var hostA = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("a"), Expert("ffn.0.0"), Expert("ffn.0.1")), 31);
        await using var hostB = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("b"), Expert("ffn.1.0"), Expert("ffn.1.1")), 32, hostA);
        // Under a loaded CI machine a second expert may answer more than the default 200 ms grace after the
        // first; this test is about learning, not about cutting stragglers, so every expert gets the whole deadline.
        var gatingOptions = TestNode.Configure(_folder.Sub("g"));
        gatingOptions.Routing = new RoutingOptions { ForwardTimeout = TimeSpan.FromSeconds(20), BackwardTimeout = TimeSpan.FromSeconds(20), GraceAfterKMin = TimeSpan.FromSeconds(20) };
        await using var gating = await TestNode.StartAsync(gatingOptions, 33, hostA);

        var layer = gating.Node.CreateMixtureOfExperts(new GatingNetwork(new ExpertGrid("ffn", 2, 2), Dim, seed: 1), new MixtureOfExpertsOptions { K = 2 });
        var model = new MoEModel(buckets: 1024, Dim, Classes, [layer], seed: 2);
        var optimizer = new Adam(model.Parameters, new LearningRateSchedule(0.01f));
        var random = new Random(3);

        var losses = new List<float>();
        int fellBack = 0;
        for (int step = 0; step < 200; step++)
        {
            var (samples, labels) = Batch(random, 32);
            var result = await model.TrainAsync(SparseFeatures.Hash(samples, model.Buckets), labels, optimizer, default);
            losses.Add(result.Loss);
            fellBack += result.FellBack;
            Assert.Equal(2.0, result.ExpertsPerSample[0]);
        }

        double first = losses.Take(20).Average(), last = losses.TakeLast(20).Average();
        output.WriteLine($"mean loss over the first 20 steps {first:F3}, over the last 20 {last:F3}");
        Assert.True(last < 0.5 * first, $"loss went from {first:F3} to {last:F3}");
        Assert.Equal(0, fellBack);
        // Every expert trained on its own host.
        var invoker = new RemoteExpertInvoker(gating.Node.Transport);
        foreach (var (host, uid) in new[] { (hostA, "ffn.0.0"), (hostA, "ffn.0.1"), (hostB, "ffn.1.0"), (hostB, "ffn.1.1") })
        {
            var info = await invoker.InfoAsync(new ExpertTarget(ExpertUid.Parse(uid), host.Endpoint), DateTimeOffset.UtcNow + TimeSpan.FromSeconds(5), default);
            Assert.True(info.Value!.Version > 0, $"{uid} was never stepped");
        }
    }
}
