using MoEMesh.Experts.Runtime;
using MoEMesh.Tensors;
using MoEMesh.Testing;

namespace MoEMesh.Experts.Tests;

/// <summary>
/// The runtime's loop against a manual clock. Every wait has a finite safety bound (a hung loop fails
/// the test instead of hanging CI); no assertion depends on how fast anything ran.
/// </summary>
public sealed class BatchingRuntimeTests : IAsyncDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly ManualTimeProvider _time = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly BatchingRuntime _runtime;
    private readonly Task _loop;
    private readonly CallLog _log = new();

    public BatchingRuntimeTests()
    {
        _runtime = new BatchingRuntime(new BatchingOptions { MaxBatchRows = 8, MaxWait = TimeSpan.FromMilliseconds(2) }, _time);
        _loop = _runtime.RunAsync(_stop.Token);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop.WaitAsync(Bound);
        _stop.Dispose();
    }

    private ExpertBackend Recording(string name) =>
        new(name, new ExpertSpec("test", 2), new RecordingExpert(2, name, _log), new OptimizerOptions());

    private static Tensor Rows(params float[] values) => Tensor.FromArray(values, [values.Length / 2, 2]);

    private async Task AdvancePastMaxWaitAsync()
    {
        using var timeout = new CancellationTokenSource(Bound);
        await _time.WaitForTimersAsync(1, timeout.Token);
        _time.Advance(TimeSpan.FromMilliseconds(2));
    }

    [Fact]
    public async Task Requests_WithinMaxWait_RunAsOneBatch_AndEachCallerGetsItsRows()
    {
        var backend = Recording("a");
        var first = _runtime.ForwardAsync(backend, Rows(1, 2), CancellationToken.None);
        var second = _runtime.ForwardAsync(backend, Rows(3, 4, 5, 6), CancellationToken.None);
        await AdvancePastMaxWaitAsync();

        Assert.Equal(new[] { 2f, 4f }, (await first.WaitAsync(Bound)).ToArray());
        Assert.Equal(new[] { 6f, 8f, 10f, 12f }, (await second.WaitAsync(Bound)).ToArray());
        Assert.Equal([("a", "forward", 3)], _log.Calls);
    }

    [Fact]
    public async Task FullBatch_RunsWithoutTheClockMoving()
    {
        var backend = Recording("a");
        var full = _runtime.ForwardAsync(backend, Tensor.Zeros(8, 2), CancellationToken.None);
        await full.WaitAsync(Bound);
        Assert.Equal([("a", "forward", 8)], _log.Calls);
    }

    [Fact]
    public async Task FailingExpert_FailsOnlyItsBatch_AndTheRuntimeKeepsServing()
    {
        var broken = new ExpertBackend("broken", new ExpertSpec("test", 2), new ThrowingExpert(2), new OptimizerOptions());
        var healthy = Recording("healthy");
        var doomed1 = _runtime.ForwardAsync(broken, Rows(1, 1), CancellationToken.None);
        var doomed2 = _runtime.ForwardAsync(broken, Rows(2, 2), CancellationToken.None);
        var fine = _runtime.ForwardAsync(healthy, Rows(1, 1), CancellationToken.None);
        await AdvancePastMaxWaitAsync();

        var e = await Assert.ThrowsAsync<ExpertExecutionException>(() => doomed1.WaitAsync(Bound));
        Assert.Contains("broken", e.Message);
        Assert.Contains("2 requests", e.Message);
        await Assert.ThrowsAsync<ExpertExecutionException>(() => doomed2.WaitAsync(Bound));
        Assert.Equal(new[] { 2f, 2f }, (await fine.WaitAsync(Bound)).ToArray());

        var later = _runtime.ForwardAsync(healthy, Tensor.Zeros(8, 2), CancellationToken.None);
        await later.WaitAsync(Bound);
    }

    [Fact]
    public async Task Backward_BatchesAndStepsOncePerBatch()
    {
        var backend = new ExpertBackend("ffn.0.0", new ExpertSpec("ffn", 2, Seed: 1), BuiltInExperts.Ffn(new ExpertSpec("ffn", 2, Seed: 1)),
            new OptimizerOptions { LearningRate = 0.01f });
        var g1 = _runtime.BackwardAsync(backend, Rows(1, 2), Rows(0.1f, 0.2f), CancellationToken.None);
        var g2 = _runtime.BackwardAsync(backend, Rows(3, 4), Rows(0.3f, 0.4f), CancellationToken.None);
        await AdvancePastMaxWaitAsync();
        await Task.WhenAll(g1, g2).WaitAsync(Bound);
        Assert.Equal(1, backend.UpdateCount);
        Assert.Equal(1, _runtime.BatchesRun);
    }

    [Fact]
    public async Task InputGradient_BatchesApartFromBackward_AndNeverSteps()
    {
        var backend = new ExpertBackend("ffn.0.0", new ExpertSpec("ffn", 2, Seed: 1), BuiltInExperts.Ffn(new ExpertSpec("ffn", 2, Seed: 1)),
            new OptimizerOptions { LearningRate = 0.01f });
        var frozen1 = _runtime.InputGradientAsync(backend, Rows(1, 2), Rows(0.1f, 0.2f), CancellationToken.None);
        var frozen2 = _runtime.InputGradientAsync(backend, Rows(3, 4), Rows(0.3f, 0.4f), CancellationToken.None);
        var trained = _runtime.BackwardAsync(backend, Rows(1, 2), Rows(0.1f, 0.2f), CancellationToken.None);
        await AdvancePastMaxWaitAsync();
        await Task.WhenAll(frozen1, frozen2, trained).WaitAsync(Bound);
        // The two frozen requests form one batch, the training one another: one step, never a frozen row in it.
        Assert.Equal(2, _runtime.BatchesRun);
        Assert.Equal(1, backend.UpdateCount);
    }

    /// <summary>Queues one row for expert b, moves the clock 1 ms, then queues one row for expert a.</summary>
    private async Task<(ExpertBackend A, Task<Tensor> FromB, Task<Tensor> FromA)> SubmitBThenAAsync()
    {
        ExpertBackend a = Recording("a"), b = Recording("b");
        var fromB = _runtime.ForwardAsync(b, Rows(1, 1), CancellationToken.None);
        using var timeout = new CancellationTokenSource(Bound);
        await _time.WaitForTimersAsync(1, timeout.Token);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        return (a, fromB, _runtime.ForwardAsync(a, Rows(1, 1), CancellationToken.None));
    }

    [Fact]
    public async Task OldestRequestAcrossExperts_RunsFirst()
    {
        var (_, fromB, fromA) = await SubmitBThenAAsync();
        await AdvancePastMaxWaitAsync();
        await Task.WhenAll(fromA, fromB).WaitAsync(Bound);
        Assert.Equal(["b", "a"], _log.Calls.Select(c => c.Expert));
    }

    [Fact]
    public async Task FullQueue_RunsBeforeAnOlderQueueThatIsNotDue()
    {
        var (a, fromB, fromA) = await SubmitBThenAAsync();
        var aFull = _runtime.ForwardAsync(a, Tensor.Zeros(7, 2), CancellationToken.None);
        await Task.WhenAll(fromA, aFull).WaitAsync(Bound);
        Assert.False(fromB.IsCompleted);
        await AdvancePastMaxWaitAsync();
        await fromB.WaitAsync(Bound);
        Assert.Equal(["a", "b"], _log.Calls.Select(c => c.Expert));
    }

    [Fact]
    public async Task CancelledWhileQueued_IsCancelled_AndNotRun()
    {
        var backend = Recording("a");
        using var cancel = new CancellationTokenSource();
        var request = _runtime.ForwardAsync(backend, Rows(1, 1), cancel.Token);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request.WaitAsync(Bound));
        await _runtime.ForwardAsync(backend, Tensor.Zeros(8, 2), CancellationToken.None).WaitAsync(Bound);
        Assert.Equal([("a", "forward", 8)], _log.Calls);
    }

    [Fact]
    public async Task Stop_CancelsQueuedRequests()
    {
        var request = _runtime.ForwardAsync(Recording("a"), Rows(1, 1), CancellationToken.None);
        await _stop.CancelAsync();
        await _loop.WaitAsync(Bound);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request.WaitAsync(Bound));
    }

    [Fact]
    public void Submit_TooManyRowsOrWrongShape_IsRejectedUpFront()
    {
        var backend = Recording("a");
        var tooMany = Assert.Throws<ArgumentException>(() => { _ = _runtime.ForwardAsync(backend, Tensor.Zeros(9, 2), CancellationToken.None); });
        Assert.Contains("batch limit is 8", tooMany.Message);
        var wrongShape = Assert.Throws<ArgumentException>(() => { _ = _runtime.ForwardAsync(backend, Tensor.Zeros(1, 3), CancellationToken.None); });
        Assert.Contains("[batch, 2]", wrongShape.Message);
    }

    [Fact]
    public void ALingerLongerThanASecond_StopsTheRuntimeBeingMade() =>
        Assert.Equal("BatchingOptions:MaxWait: must be between 0 and 00:00:01 (every call it holds pays it); got 00:00:05.",
            Assert.Throws<ArgumentException>(() => new BatchingRuntime(new BatchingOptions { MaxWait = TimeSpan.FromSeconds(5) }, _time)).Message);
}
