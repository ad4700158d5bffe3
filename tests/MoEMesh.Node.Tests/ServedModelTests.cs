using MoEMesh.Node.Queries;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Tests;

/// <summary>Concurrent queries of one model are batched: those that wait while a batch runs form the next batch together.</summary>
public sealed class ServedModelTests
{
    [Fact]
    public async Task QueriesWaitingWhileABatchRuns_FormOneBatch_AndEachGetsItsOwnAnswers()
    {
        var calls = new List<IReadOnlyList<string>>();
        var firstRunning = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        async Task<IReadOnlyList<SamplePrediction>> Predict(IReadOnlyList<string> texts, CancellationToken _)
        {
            lock (calls) calls.Add(texts);
            if (calls.Count == 1)
            {
                firstRunning.SetResult();
                await release.Task;
            }
            return texts.Select(t => new SamplePrediction(t.Length, [], [], [], 0)).ToArray();
        }
        await using var served = new ServedModel("m", 1, new ModelPublication { Name = "m" }, TestModels.Spec(), Predict, maxBatchTexts: 8, TimeSpan.Zero, TimeProvider.System);

        var first = served.PredictAsync(["a"], DateTimeOffset.MaxValue, default);
        await firstRunning.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var waiting = Enumerable.Range(2, 5).Select(n => served.PredictAsync([new string('x', n), new string('y', n + 10)], DateTimeOffset.MaxValue, default)).ToArray();
        release.SetResult();

        Assert.Equal(1, (await first)[0].Label);
        for (int i = 0; i < waiting.Length; i++)
            Assert.Equal([i + 2, i + 12], (await waiting[i]).Select(p => p.Label));
        // Ten texts wait and a batch takes at most eight, so they run as two batches rather than five.
        Assert.Equal([1, 8, 2], calls.Select(c => c.Count));
        Assert.Equal(3, served.Batches);
    }
}
