using MoEMesh.Experts.Runtime;
using MoEMesh.Tensors;
using MoEMesh.Testing;

namespace MoEMesh.Experts.Tests;

/// <summary>
/// A runtime with two compute loops: different experts' batches run side by side, one expert's never.
/// Experts here hold their batch until the test lets it go, so nothing depends on how fast the loops run;
/// every wait has a finite safety bound.
/// </summary>
public sealed class ConcurrentBatchesTests : IAsyncDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly CancellationTokenSource _stop = new();
    private readonly BatchingRuntime _runtime;
    private readonly Task _loops;
    private readonly List<HeldExpert> _held = [];

    public ConcurrentBatchesTests()
    {
        _runtime = new BatchingRuntime(new BatchingOptions { MaxBatchRows = 8, ConcurrentBatches = 2 }, new ManualTimeProvider());
        _loops = _runtime.RunAsync(_stop.Token);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var expert in _held) expert.Release();
        await _stop.CancelAsync();
        await _loops.WaitAsync(Bound);
        _stop.Dispose();
    }

    private (ExpertBackend Backend, HeldExpert Expert) Held(string name)
    {
        var expert = new HeldExpert();
        _held.Add(expert);
        return (new ExpertBackend(name, new ExpertSpec("test", 2), expert, new OptimizerOptions()), expert);
    }

    private static ExpertBackend Recording(string name) =>
        new(name, new ExpertSpec("test", 2), new RecordingExpert(2, name), new OptimizerOptions());

    private static Tensor Row(float value) => Tensor.FromArray([value, value], [1, 2]);

    [Fact]
    public async Task AnExpertHoldingItsBatch_DoesNotHoldUpAnotherExpert()
    {
        var (slow, held) = Held("slow");
        var slowCall = _runtime.ForwardAsync(slow, Row(1), CancellationToken.None);
        await held.WaitUntilEnteredAsync(1, Bound);

        var other = await _runtime.ForwardAsync(Recording("other"), Row(3), CancellationToken.None).WaitAsync(Bound);

        Assert.Equal(new[] { 6f, 6f }, other.ToArray());
        Assert.False(slowCall.IsCompleted);
        held.Release();
        Assert.Equal(new[] { 1f, 1f }, (await slowCall.WaitAsync(Bound)).ToArray());
    }

    [Fact]
    public async Task AnExpert_RunsOneBatchAtATime_WhileAnotherLoopIsFree()
    {
        var (busy, held) = Held("busy");
        var first = _runtime.ForwardAsync(busy, Row(1), CancellationToken.None);
        await held.WaitUntilEnteredAsync(1, Bound);
        var second = _runtime.ForwardAsync(busy, Row(2), CancellationToken.None);
        // The free loop sees the second request (it is older) before this one, and must pass it over.
        await _runtime.ForwardAsync(Recording("other"), Row(3), CancellationToken.None).WaitAsync(Bound);

        Assert.Equal(1, held.Entered);
        held.Release();
        await Task.WhenAll(first, second).WaitAsync(Bound);
        Assert.Equal(2, held.Entered);
        Assert.Equal(1, held.MostAtOnce);
    }

    [Fact]
    public async Task TwoExpertsQueuedTogether_BothRunAtOnce()
    {
        var (a, heldA) = Held("a");
        var (b, heldB) = Held("b");
        var fromA = _runtime.ForwardAsync(a, Row(1), CancellationToken.None);
        var fromB = _runtime.ForwardAsync(b, Row(2), CancellationToken.None);

        // Both enter while neither is released: each request woke the loops, and the one that did not take the first took the second.
        await heldA.WaitUntilEnteredAsync(1, Bound);
        await heldB.WaitUntilEnteredAsync(1, Bound);
        heldA.Release();
        heldB.Release();
        await Task.WhenAll(fromA, fromB).WaitAsync(Bound);
    }

    [Fact]
    public async Task Stop_WaitsForRunningBatches_AndCancelsQueuedOnes()
    {
        var (a, held) = Held("a");
        var running = _runtime.ForwardAsync(a, Row(1), CancellationToken.None);
        await held.WaitUntilEnteredAsync(1, Bound);
        var queued = _runtime.ForwardAsync(a, Row(2), CancellationToken.None);

        await _stop.CancelAsync();
        Assert.False(_loops.IsCompleted);
        held.Release();
        await _loops.WaitAsync(Bound);

        Assert.Equal(new[] { 1f, 1f }, (await running.WaitAsync(Bound)).ToArray());
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued.WaitAsync(Bound));
    }

    /// <summary>An identity expert whose forward waits until <see cref="Release"/>, counting who is inside.</summary>
    private sealed class HeldExpert : IExpert
    {
        private readonly ManualResetEventSlim _released = new();
        private readonly SemaphoreSlim _entries = new(0);
        private int _inside;
        private int _entered;
        private int _mostAtOnce;

        public ExpertSchema Schema { get; } = new([2], [2]);

        public IReadOnlyList<Parameter> Parameters => [];

        public int Entered => Volatile.Read(ref _entered);

        public int MostAtOnce => Volatile.Read(ref _mostAtOnce);

        public void Release() => _released.Set();

        public async Task WaitUntilEnteredAsync(int times, TimeSpan bound)
        {
            for (int i = 0; i < times; i++)
                if (!await _entries.WaitAsync(bound)) throw new TimeoutException($"the expert was entered {Entered} times, not {times}");
        }

        public Tensor Forward(Tensor input)
        {
            int inside = Interlocked.Increment(ref _inside);
            InterlockedMax(ref _mostAtOnce, inside);
            Interlocked.Increment(ref _entered);
            _entries.Release();
            try
            {
                if (!_released.Wait(Bound)) throw new TimeoutException("the test never released the expert");
                return input.Clone();
            }
            finally
            {
                Interlocked.Decrement(ref _inside);
            }
        }

        public Tensor Backward(Tensor input, Tensor outputGradient) => outputGradient.Clone();

        private static void InterlockedMax(ref int target, int value)
        {
            int seen;
            while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen) { }
        }
    }
}
