using MoEMesh.Node.Cli;
using MoEMesh.Node.Data;
using MoEMesh.Node.Hosting;
using MoEMesh.Routing;
using MoEMesh.Routing.Gating;
using MoEMesh.Routing.Models;
using MoEMesh.Tensors.Optimizers;

namespace MoEMesh.Node.Tests;

/// <summary>
/// A quarter of the expert hosts stop while a gating node trains a model on the shipped data: training goes
/// on through the other replicas, no step fails, and the model ends within a point of one trained without
/// the stop. The experts are frozen (trunk, gates and head learn), so replicas hold the same weights and
/// the two runs differ only by the stop; how trained experts' weights outlive their hosts is measured by
/// the churn study (scripts/churn-study). Real nodes over loopback sockets.
/// </summary>
[Collection(SwarmsOfTheirOwn.Name)]
public sealed class TrainingChurnTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private const int Dim = 16, Steps = 240, BatchSize = 32, TestTexts = 1000;
    private static readonly string[][] Hosted = [["ffn.0.0", "ffn.0.1"], ["ffn.1.0", "ffn.1.1"], ["ffn.0.0", "ffn.0.1"], ["ffn.1.0", "ffn.1.1"]];
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task AQuarterOfTheHostsStopMidTraining_TrainingGoesOnThroughTheirReplicas_AndEndsWithinAPointOfTheRunWithoutStops()
    {
        var calm = await TrainAsync("calm", stopOne: false);
        var churned = await TrainAsync("churn", stopOne: true);
        output.WriteLine($"accuracy on {TestTexts} test texts after {Steps} steps: {calm:P2} without stops, {churned:P2} with a quarter of the hosts stopped at step {Steps / 3}");
        Assert.True(Math.Abs(churned - calm) <= 0.01, $"accuracy {churned:P2} with the stop against {calm:P2} without");
    }

    /// <summary>Trains on four hosts (two replicas of each expert) and returns the accuracy on the test texts; with <paramref name="stopOne"/>, host 0 stops a third of the way in.</summary>
    private async Task<double> TrainAsync(string run, bool stopOne)
    {
        var data = DataFileReader.Read(Path.Combine(Testing.RepositoryRoot.Path, "data", "train.tsv"), DataFormat.Tsv, new DataColumns()).Examples;
        var test = DataFileReader.Read(Path.Combine(Testing.RepositoryRoot.Path, "data", "test.tsv"), DataFormat.Tsv, new DataColumns()).Examples.Take(TestTexts).ToArray();
        var labels = data.Select(e => e.Label).Distinct().Order(StringComparer.Ordinal).ToArray();
        var label = labels.Select((l, i) => (l, i)).ToDictionary(p => p.l, p => p.i);

        var hosts = new List<TestNode>();
        try
        {
            for (int h = 0; h < Hosted.Length; h++)
                hosts.Add(await TestNode.StartAsync(Host($"{run}-{h}", Hosted[h]), 90 + h, [.. hosts.Take(1)]));
            await using var gating = await TestNode.StartAsync(Host($"{run}-g"), 99, hosts[0], hosts[1]);
            await TestNode.WaitForExpertsAsync(gating.Node, "ffn.0.0", "ffn.0.1", "ffn.1.0", "ffn.1.1");

            var spec = new ModelSpec(new TrunkSpec(4096, Dim), [new LayerSpec("ffn", [2, 2], "ffn", Dim, K: 2, RouterLosses: new RouterLossWeights())], new HeadSpec(labels), new DataColumns());
            var model = new MoEModel(spec, ModelWeights.Initialize(spec, seed: 5), (gate, options) =>
            {
                options.FreezeExperts = true;
                return gating.Node.CreateMixtureOfExperts(gate, options);
            });
            var optimizer = new Adam(model.Parameters, new LearningRateSchedule(0.01f));
            Task? stopping = null;
            for (int step = 0; step < Steps; step++)
            {
                if (stopOne && step == Steps / 3)
                {
                    // The host that stops was serving: the stop takes calls away from it.
                    var stopped = hosts[0];
                    Assert.True(stopped.Node.Experts.Values.Sum(e => e.Load.RowsLastMinute) > 0, "host 0 served no call before it stopped");
                    hosts.Remove(stopped);
                    stopping = stopped.DisposeAsync().AsTask();
                }
                var batch = data.Skip(step * BatchSize % (data.Count - BatchSize)).Take(BatchSize).ToArray();
                // A failed step throws; none may, and every text keeps an expert's answer.
                var result = await model.TrainAsync(batch.Select(e => e.Text).ToArray(), batch.Select(e => label[e.Label]).ToArray(), optimizer, default);
                Assert.All(result.ExpertsPerSample, n => Assert.True(n >= 1, $"step {step}: fewer than one expert answered per text"));
            }
            if (stopping is not null) await stopping;
            var predictions = await model.PredictAsync(test.Select(e => e.Text).ToArray(), default);
            return predictions.Zip(test).Count(p => p.First.Label == label[p.Second.Label]) / (double)test.Length;
        }
        finally
        {
            foreach (var h in hosts) await h.DisposeAsync();
        }
    }

    private NodeOptions Host(string name, params string[] uids)
    {
        var options = TestNode.Configure(_folder.Sub(name), uids.Select(u => new ExpertHostingOptions { Type = "ffn", Uid = u, HiddenDim = Dim }).ToArray());
        options.UpdatePeriod = TimeSpan.FromSeconds(2);
        options.Routing = TestNode.Patient();
        return options;
    }
}
