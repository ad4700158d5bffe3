using MoEMesh.Experts.Runtime;
using MoEMesh.Tensors;
using MoEMesh.Testing;

namespace MoEMesh.Experts.Tests;

public class BatchSchedulerTests
{
    private readonly ManualTimeProvider _time = new();
    private readonly BatchingOptions _options = new() { MaxBatchRows = 10, MaxWait = TimeSpan.FromMilliseconds(2) };

    private static ExpertBackend Backend(string name) =>
        new(name, new ExpertSpec("identity", 2), new IdentityExpert(2), new OptimizerOptions());

    private WorkItem Item(ExpertBackend backend, int rows, BatchKind kind = BatchKind.Forward) =>
        new(backend, kind, Tensor.Zeros(rows, 2), null, _time.GetTimestamp());

    [Fact]
    public void TryTakeBatch_BeforeMaxWait_WaitsThenRunsAtMaxWait()
    {
        var scheduler = new BatchScheduler(_options, _time);
        scheduler.Add(Item(Backend("a"), 1));
        _time.Advance(TimeSpan.FromMilliseconds(1.9));
        Assert.False(scheduler.TryTakeBatch(_time.GetTimestamp(), out _));
        Assert.Equal(TimeSpan.FromMilliseconds(0.1), _time.GetElapsedTime(_time.GetTimestamp(), scheduler.NextDue()!.Value));
        _time.Advance(TimeSpan.FromMilliseconds(0.1));
        Assert.True(scheduler.TryTakeBatch(_time.GetTimestamp(), out var batch));
        Assert.Single(batch.Items);
    }

    [Fact]
    public void TryTakeBatch_FullBatch_RunsWithoutWaiting()
    {
        var scheduler = new BatchScheduler(_options, _time);
        var backend = Backend("a");
        scheduler.Add(Item(backend, 4));
        scheduler.Add(Item(backend, 6));
        Assert.True(scheduler.TryTakeBatch(_time.GetTimestamp(), out var batch));
        Assert.Equal(10, batch.Rows);
    }

    [Fact]
    public void TryTakeBatch_NeverExceedsMaxRows_AndKeepsArrivalOrder()
    {
        var scheduler = new BatchScheduler(_options, _time);
        var backend = Backend("a");
        var items = new[] { 3, 4, 5, 2, 6 }.Select(rows => Item(backend, rows)).ToArray();
        foreach (var item in items) scheduler.Add(item);
        _time.Advance(TimeSpan.FromMilliseconds(2));
        var batches = new List<ExpertBatch>();
        while (scheduler.TryTakeBatch(_time.GetTimestamp(), out var batch)) batches.Add(batch);
        Assert.Equal([[3, 4], [5, 2], [6]], batches.Select(b => b.Items.Select(i => i.Rows).ToArray()));
        Assert.All(batches, b => Assert.True(b.Rows <= 10));
    }

    [Fact]
    public void TryTakeBatch_SeveralReadyQueues_OldestRequestFirst()
    {
        var scheduler = new BatchScheduler(_options, _time);
        ExpertBackend a = Backend("a"), b = Backend("b");
        scheduler.Add(Item(b, 1, BatchKind.Backward));
        _time.Advance(TimeSpan.FromMilliseconds(0.5));
        scheduler.Add(Item(a, 1));
        _time.Advance(TimeSpan.FromMilliseconds(0.5));
        scheduler.Add(Item(b, 1));
        _time.Advance(TimeSpan.FromMilliseconds(5));
        var order = new List<(string, BatchKind)>();
        while (scheduler.TryTakeBatch(_time.GetTimestamp(), out var batch)) order.Add((batch.Backend.Name, batch.Kind));
        Assert.Equal([("b", BatchKind.Backward), ("a", BatchKind.Forward), ("b", BatchKind.Forward)], order);
    }

    [Fact]
    public void TryTakeBatch_CancelledRequests_AreSkipped()
    {
        var scheduler = new BatchScheduler(_options, _time);
        var backend = Backend("a");
        var cancelled = Item(backend, 9);
        var kept = Item(backend, 1);
        scheduler.Add(cancelled);
        scheduler.Add(kept);
        cancelled.Completion.SetCanceled();
        Assert.False(scheduler.TryTakeBatch(_time.GetTimestamp(), out _));
        _time.Advance(TimeSpan.FromMilliseconds(2));
        Assert.True(scheduler.TryTakeBatch(_time.GetTimestamp(), out var batch));
        Assert.Same(kept, Assert.Single(batch.Items));
        Assert.Equal(0, scheduler.PendingRows);
    }

    [Fact]
    public void NextDue_NothingWaiting_IsNull()
    {
        Assert.Null(new BatchScheduler(_options, _time).NextDue());
    }

    /// <summary>
    /// Takes a batch of <paramref name="requests"/> one-row requests that runs for <paramref name="ran"/>
    /// while <paramref name="meanwhile"/> more arrive, then answers it (MaxWait 0).
    /// </summary>
    private (BatchScheduler Scheduler, ExpertBackend Backend) AfterABatchOf(int requests, TimeSpan ran, TimeSpan linger, int meanwhile = 0)
    {
        var scheduler = new BatchScheduler(new BatchingOptions { MaxBatchRows = 100, Linger = linger }, _time);
        var backend = Backend("a");
        for (int i = 0; i < requests; i++) scheduler.Add(Item(backend, 1));
        Assert.True(scheduler.TryTakeBatch(_time.GetTimestamp(), out var batch));
        Assert.Equal(requests, batch.Items.Count);
        _time.Advance(ran / 2);
        for (int i = 0; i < meanwhile; i++) scheduler.Add(Item(backend, 1));
        _time.Advance(ran / 2);
        scheduler.Ran(batch, ran, _time.GetTimestamp());
        _time.Advance(TimeSpan.FromTicks(1));
        return (scheduler, backend);
    }

    [Fact]
    public void AfterABatchOfThree_TheNextWaitsUpToTheLinger_ForThoseThreeToComeBack()
    {
        // Two requests arrived while the batch of three ran: they wait for the three just answered.
        var (scheduler, backend) = AfterABatchOf(3, TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(2), meanwhile: 2);
        Assert.False(scheduler.TryTakeBatch(_time.GetTimestamp(), out _));
        scheduler.Add(Item(backend, 1));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        scheduler.Add(Item(backend, 1));
        Assert.False(scheduler.TryTakeBatch(_time.GetTimestamp(), out _));

        scheduler.Add(Item(backend, 1));
        Assert.True(scheduler.TryTakeBatch(_time.GetTimestamp(), out var batch));
        Assert.Equal(5, batch.Items.Count);
    }

    [Fact]
    public void WhenTheyDoNotComeBack_TheBatchRunsAtTheLinger_CountedFromTheAnswer()
    {
        var (scheduler, backend) = AfterABatchOf(3, TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(2), meanwhile: 1);
        scheduler.Add(Item(backend, 1));
        Assert.Equal(TimeSpan.FromMilliseconds(2) - TimeSpan.FromTicks(1), _time.GetElapsedTime(_time.GetTimestamp(), scheduler.NextDue()!.Value));
        _time.Advance(TimeSpan.FromMilliseconds(1.9));
        Assert.False(scheduler.TryTakeBatch(_time.GetTimestamp(), out _));
        _time.Advance(TimeSpan.FromMilliseconds(0.1));
        Assert.True(scheduler.TryTakeBatch(_time.GetTimestamp(), out var batch));
        Assert.Equal(2, batch.Items.Count);

        // That batch held two, and two come back: the next does not wait.
        scheduler.Ran(batch, TimeSpan.FromMilliseconds(20), _time.GetTimestamp());
        scheduler.Add(Item(backend, 1));
        scheduler.Add(Item(backend, 1));
        Assert.True(scheduler.TryTakeBatch(_time.GetTimestamp(), out _));
    }

    [Fact]
    public void AQuickExpert_LingersAQuarterOfItsLastRun_AtMost()
    {
        var (scheduler, backend) = AfterABatchOf(3, TimeSpan.FromMilliseconds(0.4), TimeSpan.FromMilliseconds(2));
        scheduler.Add(Item(backend, 1));
        Assert.Equal(TimeSpan.FromMilliseconds(0.1) - TimeSpan.FromTicks(1), _time.GetElapsedTime(_time.GetTimestamp(), scheduler.NextDue()!.Value));
    }

    [Fact]
    public void ALoneCaller_AndAZeroLinger_NeverWait()
    {
        var (lone, loneBackend) = AfterABatchOf(1, TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(2));
        lone.Add(Item(loneBackend, 1));
        Assert.True(lone.TryTakeBatch(_time.GetTimestamp(), out _));

        var (off, offBackend) = AfterABatchOf(3, TimeSpan.FromMilliseconds(20), TimeSpan.Zero);
        off.Add(Item(offBackend, 1));
        Assert.True(off.TryTakeBatch(_time.GetTimestamp(), out _));
    }

    [Fact]
    public void CallersComingBackWithABackward_EndTheForwardsLinger()
    {
        // Three trainers' forwards ran together; a fourth forward arrived meanwhile. The three come back with backwards.
        var (scheduler, backend) = AfterABatchOf(3, TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(2), meanwhile: 1);
        Assert.False(scheduler.TryTakeBatch(_time.GetTimestamp(), out _));
        for (int i = 0; i < 3; i++) scheduler.Add(Item(backend, 1, BatchKind.Backward));
        Assert.True(scheduler.TryTakeBatch(_time.GetTimestamp(), out var batch));
        Assert.Equal(BatchKind.Forward, batch.Kind);
    }
}
