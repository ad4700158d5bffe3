using MoEMesh.Node.Hosting;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Routing;
using MoEMesh.Routing.Gating;
using MoEMesh.Routing.Invocation;
using MoEMesh.Routing.Models;
using MoEMesh.Tensors.Optimizers;

namespace MoEMesh.Node.Tests;

/// <summary>A gating node trains a whole two-layer model against experts hosted by other nodes, over real sockets.</summary>
public sealed class TrainingTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private const int Dim = 16, Classes = 4;
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static ExpertHostingOptions Expert(string uid) => new() { Type = "ffn", Uid = uid, HiddenDim = Dim, Optimizer = "adam", LearningRate = 3e-3f };

    /// <summary>Class c is told by its own words; every text also carries noise words shared by all classes.</summary>
    private static (string[] Texts, int[] Labels) Batch(Random random, int size)
    {
        var texts = new string[size];
        var labels = new int[size];
        for (int i = 0; i < size; i++)
        {
            int c = random.Next(Classes);
            labels[i] = c;
            texts[i] = string.Join(' ', Enumerable.Range(0, 4).Select(_ => $"c{c}t{random.Next(10)}").Concat(Enumerable.Range(0, 2).Select(_ => $"noise{random.Next(50)}")));
        }
        return (texts, labels);
    }

    [Fact]
    public async Task GatingNode_TrainsATwoLayerModelAgainstRemoteExperts_AndTheLossFalls()
    {
        // The hosts let exactly the gating node train their experts.
        var trainer = PeerIdentity.FromSeed(33).PeerId.ToString();
        var optionsA = TestNode.Configure(_folder.Sub("a"), Expert("ffn.0.0"), Expert("ffn.0.1"));
        var optionsB = TestNode.Configure(_folder.Sub("b"), Expert("ffn.1.0"), Expert("ffn.1.1"));
        optionsA.Serving.TrainingPeers.Add(trainer);
        optionsB.Serving.TrainingPeers.Add(trainer);
        await using var hostA = await TestNode.StartAsync(optionsA, 31);
        await using var hostB = await TestNode.StartAsync(optionsB, 32, hostA);
        // Under a loaded CI machine a second expert may answer more than the default 200 ms grace after the
        // first; this test is about learning, not about cutting stragglers, so every expert gets the whole deadline.
        var gatingOptions = TestNode.Configure(_folder.Sub("g"));
        gatingOptions.Routing = TestNode.Patient();
        await using var gating = await TestNode.StartAsync(gatingOptions, 33, hostA);
        await TestNode.WaitForExpertsAsync(gating.Node, "ffn.0.0", "ffn.0.1", "ffn.1.0", "ffn.1.1");

        var layer = new LayerSpec("ffn", [2, 2], "ffn", Dim, K: 2, RouterLosses: new RouterLossWeights());
        var spec = new ModelSpec(new TrunkSpec(1024, Dim), [layer, layer], new HeadSpec(["0", "1", "2", "3"]), new DataColumns());
        var model = new MoEModel(spec, ModelWeights.Initialize(spec, seed: 2), gating.Node.CreateMixtureOfExperts);
        // Every parameter has its own hierarchical name, so one optimizer takes them all.
        Assert.Contains("layers.1.gate.0.weight", model.Parameters.Select(p => p.Name));
        Assert.Equal(model.Parameters.Count, model.Parameters.Select(p => p.Name).Distinct().Count());
        var optimizer = new Adam(model.Parameters, new LearningRateSchedule(0.01f));
        var random = new Random(3);

        var losses = new List<float>();
        int fellBack = 0, backwardFailures = 0;
        for (int step = 0; step < 200; step++)
        {
            var (texts, labels) = Batch(random, 32);
            var result = await model.TrainAsync(texts, labels, optimizer, default);
            losses.Add(result.Loss);
            fellBack += result.FellBack;
            backwardFailures += result.BackwardFailures;
            Assert.Equal([2.0, 2.0], result.ExpertsPerSample);
        }

        double first = losses.Take(20).Average(), last = losses.TakeLast(20).Average();
        output.WriteLine($"mean loss over the first 20 steps {first:F3}, over the last 20 {last:F3}");
        Assert.True(last < 0.5 * first, $"loss went from {first:F3} to {last:F3}");
        Assert.Equal(0, fellBack);
        Assert.Equal(0, backwardFailures);
        // Both gates trained, and every expert trained on its own host.
        var fresh = ModelWeights.Initialize(spec, seed: 2);
        foreach (var name in new[] { "layers.0.gate.0.weight", "layers.1.gate.1.weight" })
            Assert.NotEqual(fresh.Parameters.Single(p => p.Name == name).Value.ToArray(), model.Parameters.Single(p => p.Name == name).Value.ToArray());
        var invoker = new RemoteExpertInvoker(gating.Node.Transport);
        foreach (var (host, uid) in new[] { (hostA, "ffn.0.0"), (hostA, "ffn.0.1"), (hostB, "ffn.1.0"), (hostB, "ffn.1.1") })
        {
            var info = await invoker.InfoAsync(new ExpertTarget(ExpertUid.Parse(uid), host.Endpoint), DateTimeOffset.UtcNow + TimeSpan.FromSeconds(5), default);
            Assert.True(info.Value!.Version > 0, $"{uid} was never stepped");
        }
    }

    [Fact]
    public async Task TrainerTheHostDoesNotAllow_IsToldPerStep_AndTheExpertsStayAsTheyWere()
    {
        await using var host = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("a"), Expert("ffn.0"), Expert("ffn.1")), 41);
        var gatingOptions = TestNode.Configure(_folder.Sub("g"));
        gatingOptions.Routing = TestNode.Patient();
        await using var gating = await TestNode.StartAsync(gatingOptions, 42, host);
        var layer = new LayerSpec("ffn", [2], "ffn", Dim, K: 2, RouterLosses: new RouterLossWeights());
        var spec = new ModelSpec(new TrunkSpec(1024, Dim), [layer], new HeadSpec(["0", "1", "2", "3"]), new DataColumns());
        var model = new MoEModel(spec, ModelWeights.Initialize(spec, seed: 2), gating.Node.CreateMixtureOfExperts);
        var optimizer = new Adam(model.Parameters, new LearningRateSchedule(0.01f));
        var (texts, labels) = Batch(new Random(4), 8);

        var result = await model.TrainAsync(texts, labels, optimizer, default);

        Assert.Equal(2, result.BackwardFailures);
        Assert.Contains("PermissionDenied", result.BackwardProblem);
        Assert.Contains(gating.Node.PeerId.ToString(), result.BackwardProblem);
        var invoker = new RemoteExpertInvoker(gating.Node.Transport);
        foreach (var uid in new[] { "ffn.0", "ffn.1" })
        {
            var info = await invoker.InfoAsync(new ExpertTarget(ExpertUid.Parse(uid), host.Endpoint), DateTimeOffset.UtcNow + TimeSpan.FromSeconds(5), default);
            Assert.Equal(0, info.Value!.Version);
        }
    }

    [Fact]
    public async Task FrozenExperts_StayAsTheyAre_WhileTrunkGatesAndHeadLearn_EvenFromAHostThatAllowsNoTraining()
    {
        // The host allows no trainer: a frozen backward moves no weight, so it is served anyway.
        await using var host = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("a"), Expert("ffn.0"), Expert("ffn.1")), 51);
        var gatingOptions = TestNode.Configure(_folder.Sub("g"));
        gatingOptions.Routing = TestNode.Patient();
        await using var gating = await TestNode.StartAsync(gatingOptions, 52, host);
        var layer = new LayerSpec("ffn", [2], "ffn", Dim, K: 2, RouterLosses: new RouterLossWeights());
        var spec = new ModelSpec(new TrunkSpec(1024, Dim), [layer], new HeadSpec(["0", "1", "2", "3"]), new DataColumns());
        var model = new MoEModel(spec, ModelWeights.Initialize(spec, seed: 2), (gate, options) =>
        {
            options.FreezeExperts = true;
            return gating.Node.CreateMixtureOfExperts(gate, options);
        });
        var invoker = new RemoteExpertInvoker(gating.Node.Transport);
        var probe = Enumerable.Repeat(0.5f, 2 * Dim).ToArray();
        async Task<float[]> ExpertOutputAsync(string uid)
        {
            using var input = Tensors.Tensor.FromSpan(probe, new Tensors.TensorShape(2, Dim));
            var forward = await invoker.ForwardAsync(new ExpertTarget(ExpertUid.Parse(uid), host.Endpoint), input, Protocol.Wire.Compression.None, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(20), default);
            using var output = forward.Value!;
            return output.ToArray();
        }
        var before = new[] { await ExpertOutputAsync("ffn.0"), await ExpertOutputAsync("ffn.1") };
        var optimizer = new Adam(model.Parameters, new LearningRateSchedule(0.01f));
        var random = new Random(5);

        var losses = new List<float>();
        for (int step = 0; step < 100; step++)
        {
            var (texts, labels) = Batch(random, 32);
            var result = await model.TrainAsync(texts, labels, optimizer, default);
            Assert.Equal(0, result.BackwardFailures);
            losses.Add(result.Loss);
        }

        double first = losses.Take(10).Average(), last = losses.TakeLast(10).Average();
        Assert.True(last < 0.5 * first, $"loss went from {first:F3} to {last:F3}");
        foreach (var (uid, i) in new[] { ("ffn.0", 0), ("ffn.1", 1) })
        {
            var info = await invoker.InfoAsync(new ExpertTarget(ExpertUid.Parse(uid), host.Endpoint), DateTimeOffset.UtcNow + TimeSpan.FromSeconds(20), default);
            Assert.Equal(0, info.Value!.Version);
            Assert.Equal(before[i], await ExpertOutputAsync(uid));
        }
    }

    [Fact]
    public async Task ATrunkTakenFromAnotherModel_StaysAsItIs_WhenFrozen_WhileGatesAndHeadLearn()
    {
        var trainer = PeerIdentity.FromSeed(83).PeerId.ToString();
        var hostOptions = TestNode.Configure(_folder.Sub("a"), Expert("ffn.0"), Expert("ffn.1"));
        hostOptions.Serving.TrainingPeers.Add(trainer);
        await using var host = await TestNode.StartAsync(hostOptions, 81);
        var gatingOptions = TestNode.Configure(_folder.Sub("g"));
        gatingOptions.Routing = TestNode.Patient();
        await using var gating = await TestNode.StartAsync(gatingOptions, 83, host);
        var spec = new ModelSpec(new TrunkSpec(1024, Dim), [new LayerSpec("ffn", [2], "ffn", Dim, K: 2, RouterLosses: new RouterLossWeights())], new HeadSpec(["0", "1", "2", "3"]), new DataColumns());
        var published = ModelWeights.Initialize(spec, seed: 7);
        var weights = ModelWeights.Initialize(spec, seed: 2);
        weights.TakeTrunk(spec.Trunk, published.Trunk, spec.Trunk);
        Assert.Throws<ArgumentException>(() => weights.TakeTrunk(spec.Trunk with { Buckets = 512 }, ModelWeights.Initialize(spec with { Trunk = spec.Trunk with { Buckets = 512 } }, 7).Trunk, spec.Trunk));
        var model = new MoEModel(spec, weights, gating.Node.CreateMixtureOfExperts) { FreezeTrunk = true };
        Assert.DoesNotContain(weights.Trunk.Table, model.Parameters);
        var head = weights.Head.Weight.Value.ToArray();
        var optimizer = new Adam(model.Parameters, new LearningRateSchedule(0.01f));
        var random = new Random(9);
        var losses = new List<float>();
        for (int step = 0; step < 60; step++)
        {
            var (texts, labels) = Batch(random, 32);
            losses.Add((await model.TrainAsync(texts, labels, optimizer, default)).Loss);
        }

        Assert.Equal(published.Trunk.Table.Value.ToArray(), weights.Trunk.Table.Value.ToArray());
        Assert.NotEqual(head, weights.Head.Weight.Value.ToArray());
        double first = losses.Take(10).Average(), last = losses.TakeLast(10).Average();
        Assert.True(last < first, $"loss went from {first:F3} to {last:F3}");
    }

    [Fact]
    public async Task SharedExpert_AnswersEveryText_WhenEveryRemoteExpertIsDown()
    {
        var trainer = PeerIdentity.FromSeed(63).PeerId.ToString();
        var hostOptions = TestNode.Configure(_folder.Sub("a"), Expert("ffn.0"), Expert("ffn.1"));
        hostOptions.Serving.TrainingPeers.Add(trainer);
        var host = await TestNode.StartAsync(hostOptions, 61);
        var gatingOptions = TestNode.Configure(_folder.Sub("g"));
        gatingOptions.Routing = TestNode.Patient();
        await using var gating = await TestNode.StartAsync(gatingOptions, 63, host);
        ModelSpec Spec(int shared) => new(new TrunkSpec(1024, Dim), [new LayerSpec("ffn", [2], "ffn", Dim, K: 2, RouterLosses: new RouterLossWeights(), SharedExpertInner: shared)],
            new HeadSpec(["0", "1", "2", "3"]), new DataColumns());
        var withShared = new MoEModel(Spec(4 * Dim), ModelWeights.Initialize(Spec(4 * Dim), seed: 2), gating.Node.CreateMixtureOfExperts);
        var without = new MoEModel(Spec(0), ModelWeights.Initialize(Spec(0), seed: 2), gating.Node.CreateMixtureOfExperts);
        var optimizer = new Adam(withShared.Parameters, new LearningRateSchedule(0.01f));
        var random = new Random(6);
        for (int step = 0; step < 60; step++)
        {
            var (batch, batchLabels) = Batch(random, 32);
            await withShared.TrainAsync(batch, batchLabels, optimizer, default);
        }

        await host.DisposeAsync(); // every remote expert is gone
        var (texts, labels) = Batch(new Random(7), 64);
        var answers = await withShared.PredictAsync(texts, default);
        Assert.All(answers, a => Assert.DoesNotContain(a.Route, h => h.Outcome is "ok" or "fallback"));
        // The shared expert, trained beside the routed ones, still tells the classes apart.
        double accuracy = answers.Select((a, i) => a.Label == labels[i]).Average(right => right ? 1.0 : 0.0);
        Assert.True(accuracy > 0.5, $"accuracy {accuracy:P0} with every remote expert down");
        await Assert.ThrowsAsync<Routing.Calling.ExpertCallFailedException>(() => without.PredictAsync(texts, default));
        // Training is another matter: a step no routed expert answered would train the shared expert alone, so it is skipped.
        var failed = await Assert.ThrowsAsync<Routing.Calling.ExpertCallFailedException>(() => withShared.TrainAsync(texts, labels, optimizer, default));
        Assert.Contains("No routed expert answered", failed.Message);
    }

    [Fact]
    public async Task Evaluation_CountsAsUnanswered_OnlyTheTextsWhoseExpertIsDown_NotTheirWholeBatch()
    {
        await using var hostA = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("a"), Expert("ffn.0")), 71);
        var hostB = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("b"), Expert("ffn.1")), 72, hostA);
        var gatingOptions = TestNode.Configure(_folder.Sub("g"));
        gatingOptions.Routing = TestNode.Patient();
        await using var gating = await TestNode.StartAsync(gatingOptions, 73, hostA);
        var spec = new ModelSpec(new TrunkSpec(1024, Dim), [new LayerSpec("ffn", [2], "ffn", Dim, K: 1)], new HeadSpec(["0", "1", "2", "3"]), new DataColumns());
        var model = new MoEModel(spec, ModelWeights.Initialize(spec, seed: 2), gating.Node.CreateMixtureOfExperts);
        // A gate that splits the texts by the sign of w · h: ffn.1 scores what ffn.0 does, negated.
        var gate = model.Parameters.Single(p => p.Name == "layers.0.gate.0.weight").Value.Span;
        for (int i = 0; i < Dim; i++) gate[Dim + i] = -gate[i];
        model.Parameters.Single(p => p.Name == "layers.0.gate.0.bias").Value.Span.Clear();
        var (texts, labels) = Batch(new Random(8), 64);
        var examples = texts.Select((t, i) => new Example(t, labels[i].ToString(System.Globalization.CultureInfo.InvariantCulture))).ToArray();
        // Some texts go to ffn.1 once hostB's announcement has spread.
        int toB = 0;
        for (var until = DateTime.UtcNow + TimeSpan.FromSeconds(60); toB == 0 && DateTime.UtcNow < until;)
            toB = (await model.PredictAsync(texts, default)).Count(r => r.TopExperts[0] == "ffn.1");
        Assert.InRange(toB, 1, texts.Length - 1);

        await hostB.DisposeAsync(); // its record lives on: the gate still picks ffn.1 for those texts
        var report = await new ModelEvaluator(model).EvaluateAsync(examples, batchSize: 64, null, default);
        Assert.Equal(texts.Length, report.Samples);
        Assert.Equal(toB, report.Failed);
    }
}
