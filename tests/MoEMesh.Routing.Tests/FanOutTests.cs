using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Calling;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Invocation;
using MoEMesh.Tensors;
using MoEMesh.Testing;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing.Tests;

/// <summary>The forward fan-out on a manual clock with deterministic fake experts.</summary>
public sealed class FanOutTests
{
    private static readonly ExpertUid A = ExpertUid.Parse("ffn.0"), B = ExpertUid.Parse("ffn.1"), C = ExpertUid.Parse("ffn.2");

    private static ExpertHostInfo Host(ExpertUid uid, string host, int seed, int queue = 0, double p50Ms = 0) =>
        new(uid, PeerIdentity.FromSeed(seed).PeerId, [new PeerAddress(host, 7000)], "ffn", "h", new ExpertLoad { QueueDepth = queue, LatencyP50Ms = p50Ms }, 0, DateTimeOffset.MaxValue);

    private static Tensor Batch(int rows) => Tensor.FromArray(Enumerable.Range(0, rows * 2).Select(i => (float)(i + 1)).ToArray(), new TensorShape(rows, 2));

    private sealed class Rig
    {
        public ManualTimeProvider Time { get; } = new();

        public RoutingOptions Options { get; } = new();

        public FakeExperts Remote { get; }

        public FakeExperts Local { get; }

        public PeerHealth Health { get; }

        public Rig()
        {
            Remote = new FakeExperts(Time);
            Local = new FakeExperts(Time);
            Health = new PeerHealth(Options, Time);
        }

        public ExpertFanOut FanOut(bool withLocal = true) => new(Remote, withLocal ? Local : null, Health, Options, Time);
    }

    [Fact]
    public async Task OneRequestPerExpert_CarriesEverySampleRoutedToIt_AndWeightsAreRenormalisedOverAnswers()
    {
        var rig = new Rig();
        rig.Remote.With("a", "ffn.0", new(Scale: 1f)).With("b", "ffn.1", new(Scale: 10f)).With("c", "ffn.2", new(Fail: CallOutcome.Rejected));
        using var input = Batch(3);
        var request = new FanOutRequest
        {
            Input = input,
            Choices = [[new(A, 0.5f), new(B, 0.5f)], [new(A, 0.25f), new(C, 0.75f)], [new(B, 1f)]],
            Hosts = new Dictionary<ExpertUid, IReadOnlyList<ExpertHostInfo>> { [A] = [Host(A, "a", 1)], [B] = [Host(B, "b", 2)], [C] = [Host(C, "c", 3)] },
        };

        using var result = await rig.FanOut(withLocal: false).ForwardAsync(request, default);

        Assert.Equal([("a", "ffn.0", 2), ("b", "ffn.1", 2), ("c", "ffn.2", 1)], rig.Remote.Calls.OrderBy(c => c.Host));
        // Sample 0: 0.5·x + 0.5·10x; sample 1: ffn.2 failed, so ffn.0 carries all the weight; sample 2: 10x.
        Assert.Equal([5.5f, 11f, 3f, 4f, 50f, 60f], result.Output.ToArray());
        Assert.Equal([2, 1, 1], result.ExpertsPerSample);
        Assert.Equal(1f, Assert.Single(result.Used[1]).Weight);
        Assert.Contains(result.Trace, t => t.Uid == C && t.Outcome == CallOutcome.Rejected);
    }

    [Fact]
    public async Task NullShare_TakesPartInTheRenormalisation_ButDoesNotStandInForAFailedExpert()
    {
        var rig = new Rig();
        rig.Remote.With("a", "ffn.0", new(Scale: 10f)).With("b", "ffn.1", new(Fail: CallOutcome.Rejected));
        using var input = Batch(3);
        var hosts = new Dictionary<ExpertUid, IReadOnlyList<ExpertHostInfo>> { [A] = [Host(A, "a", 1)], [B] = [Host(B, "b", 2)] };
        var request = new FanOutRequest
        {
            Input = input,
            // Sample 0: ffn.0 0.5, ffn.1 0.2 (fails), null 0.3; sample 1: null experts only; sample 2: ffn.0 0.6, null 0.4.
            Choices = [[new(A, 0.5f), new(B, 0.2f)], [], [new(A, 0.6f)]],
            Hosts = hosts,
            NullShare = [0.3f, 1f, 0.4f],
        };

        using var result = await rig.FanOut(withLocal: false).ForwardAsync(request, default);

        Assert.Equal([("a", "ffn.0", 2), ("b", "ffn.1", 1)], rig.Remote.Calls.OrderBy(c => c.Host));
        // Sample 0: 10x · 0.5 / (0.5 + 0.3); sample 1: zeros; sample 2: 10x · 0.6.
        float w0 = 0.5f / 0.8f;
        Assert.Equal([10f * w0, 20f * w0, 0f, 0f, 30f, 36f], result.Output.ToArray(), new FloatTolerance(1e-5f));
        Assert.Equal([0.3f / 0.8f, 1f, 0.4f], result.NullShare, new FloatTolerance(1e-6f));
        Assert.Equal([1, 0, 1], result.ExpertsPerSample);

        // A sample whose only real expert fails is not rescued by its null share.
        var failing = new FanOutRequest { Input = input, Choices = [[new(B, 0.7f)], [], [new(A, 1f)]], Hosts = hosts, NullShare = [0.3f, 1f, 0f] };
        var e = await Assert.ThrowsAsync<ExpertCallFailedException>(() => rig.FanOut(withLocal: false).ForwardAsync(failing, default));
        Assert.StartsWith("1 of 3 samples", e.Message);
    }

    [Fact]
    public async Task Straggler_IsCutAtTheGraceTime_AfterEverySampleHasKMinAnswers()
    {
        var rig = new Rig();
        rig.Remote.With("a", "ffn.0", new()).With("b", "ffn.1", new(Delay: TimeSpan.FromSeconds(10)));
        using var input = Batch(2);
        var request = new FanOutRequest
        {
            Input = input,
            Choices = [[new(A, 0.5f), new(B, 0.5f)], [new(A, 0.5f), new(B, 0.5f)]],
            Hosts = new Dictionary<ExpertUid, IReadOnlyList<ExpertHostInfo>> { [A] = [Host(A, "a", 1)], [B] = [Host(B, "b", 2)] },
        };

        var running = rig.FanOut().ForwardAsync(request, default);
        // Armed: the fan-out deadline, the straggler's delay, and the grace timer once ffn.0 has answered.
        await rig.Time.WaitForTimersAsync(3, new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        rig.Time.Advance(TimeSpan.FromMilliseconds(199));
        Assert.False(running.IsCompleted);
        rig.Time.Advance(TimeSpan.FromMilliseconds(1));
        using var result = await running.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal([("b", "ffn.1")], rig.Remote.Cancelled);
        Assert.Equal(input.ToArray(), result.Output.ToArray());
        var cut = Assert.Single(result.Trace, t => t.Uid == B);
        Assert.Equal(CallOutcome.Timeout, cut.Outcome);
        Assert.Contains("grace", cut.Error);
        Assert.All(result.FellBack, Assert.False);
    }

    [Fact]
    public async Task NothingAnswersByTheDeadline_LocalExpertsAnswer_AndTheResultSaysWhichSamplesFellBack()
    {
        var rig = new Rig();
        rig.Remote.With("a", "ffn.0", new(Delay: TimeSpan.FromSeconds(30)));
        rig.Local.With("local", "ffn.0", new(Scale: 2f)).With("local", "ffn.5", new(Scale: 3f));
        using var input = Batch(2);
        var request = new FanOutRequest
        {
            Input = input,
            Choices = [[new(A, 1f)], [new(A, 1f)]],
            Hosts = new Dictionary<ExpertUid, IReadOnlyList<ExpertHostInfo>> { [A] = [Host(A, "a", 1)] },
            // Sample 0: the same uid is hosted locally; sample 1: the best local expert is another one.
            Fallback = s => s == 0 ? A : ExpertUid.Parse("ffn.5"),
        };

        var running = rig.FanOut().ForwardAsync(request, default);
        await rig.Time.WaitForTimersAsync(2, new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        rig.Time.Advance(rig.Options.ForwardTimeout);
        using var result = await running.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal([true, true], result.FellBack);
        Assert.Equal([2f, 4f, 9f, 12f], result.Output.ToArray());
        Assert.Contains(result.Trace, t => t.Uid == A && !t.Local && t.Outcome == CallOutcome.Timeout);
        Assert.Equal(2, result.Trace.Count(t => t.Local));
    }

    [Fact]
    public async Task NaNOutput_CountsAsAFailure()
    {
        var rig = new Rig();
        rig.Remote.With("a", "ffn.0", new(NaN: true)).With("b", "ffn.1", new(Scale: 3f));
        using var input = Batch(1);
        var request = new FanOutRequest
        {
            Input = input,
            Choices = [[new(A, 0.9f), new(B, 0.1f)]],
            Hosts = new Dictionary<ExpertUid, IReadOnlyList<ExpertHostInfo>> { [A] = [Host(A, "a", 1)], [B] = [Host(B, "b", 2)] },
        };
        using var result = await rig.FanOut().ForwardAsync(request, default);
        Assert.Equal([3f, 6f], result.Output.ToArray());
        Assert.Contains(result.Trace, t => t.Uid == A && t.Outcome == CallOutcome.Rejected && t.Error!.Contains("NaN"));
    }

    [Fact]
    public async Task UnreachableHost_IsReplacedByTheNextReplica_AndBackedOff()
    {
        var rig = new Rig();
        rig.Remote.With("dead", "ffn.0", new(Fail: CallOutcome.Unreachable)).With("alive", "ffn.0", new(Scale: 5f));
        using var input = Batch(1);
        var dead = Host(A, "dead", 1);
        var alive = Host(A, "alive", 2, queue: 3, p50Ms: 1);
        var request = new FanOutRequest
        {
            Input = input,
            Choices = [[new(A, 1f)]],
            Hosts = new Dictionary<ExpertUid, IReadOnlyList<ExpertHostInfo>> { [A] = [dead, alive] },
        };
        using var result = await rig.FanOut().ForwardAsync(request, default);
        Assert.Equal([5f, 10f], result.Output.ToArray());
        Assert.Equal(["dead", "alive"], rig.Remote.Calls.Select(c => c.Host));
        Assert.True(rig.Health.IsBackedOff(dead.Host));
        // Next time the healthy replica goes first, though it announced a longer queue.
        Assert.Equal([alive.Host, dead.Host], rig.Health.Order([dead, alive]).Select(h => h.Host));
    }

    [Fact]
    public async Task EveryKnownHostUnreachable_TheUidIsRediscoveredOnce_AndItsNewHostAnswers()
    {
        var rig = new Rig();
        rig.Remote.With("restarted", "ffn.0", new(Fail: CallOutcome.Unreachable)).With("new", "ffn.0", new(Scale: 4f))
            .With("gone", "ffn.1", new(Fail: CallOutcome.Unreachable));
        using var input = Batch(2);
        var asked = new List<ExpertUid>();
        var request = new FanOutRequest
        {
            Input = input,
            Choices = [[new(A, 1f)], [new(B, 1f)]],
            // A cache from before a restart: only the old host of ffn.0 is known.
            Hosts = new Dictionary<ExpertUid, IReadOnlyList<ExpertHostInfo>> { [A] = [Host(A, "restarted", 1)], [B] = [Host(B, "gone", 3)] },
            Rediscover = (uid, _) =>
            {
                lock (asked) asked.Add(uid);
                // The DHT still holds the old record next to the new one; ffn.1 has nobody else.
                return Task.FromResult<IReadOnlyList<ExpertHostInfo>>(uid == A ? [Host(A, "restarted", 1), Host(A, "new", 2)] : [Host(B, "gone", 3)]);
            },
            Fallback = _ => C,
        };
        rig.Local.With("local", "ffn.2", new(Scale: 7f));

        using var result = await rig.FanOut().ForwardAsync(request, default);

        Assert.Equal([A, B], asked.OrderBy(u => u.Value));
        Assert.Equal([4f, 8f, 21f, 28f], result.Output.ToArray());
        Assert.Equal([false, true], result.FellBack);
        // The old host is not called twice; ffn.1's only host is not retried.
        Assert.Equal([("gone", "ffn.1"), ("new", "ffn.0"), ("restarted", "ffn.0")], rig.Remote.Calls.Select(c => (c.Host, c.Uid)).Order());
        Assert.Contains(result.Trace, t => t.Uid == A && t.Outcome == CallOutcome.Ok);
    }

    [Fact]
    public async Task RediscoveryThatFails_LeavesTheCallsOwnFailure_AndTheFallbackAnswers()
    {
        var rig = new Rig();
        rig.Remote.With("gone", "ffn.0", new(Fail: CallOutcome.Unreachable));
        rig.Local.With("local", "ffn.0", new(Scale: 2f));
        using var input = Batch(1);
        var request = new FanOutRequest
        {
            Input = input,
            Choices = [[new(A, 1f)]],
            Hosts = new Dictionary<ExpertUid, IReadOnlyList<ExpertHostInfo>> { [A] = [Host(A, "gone", 1)] },
            Rediscover = (_, _) => throw new InvalidOperationException("the DHT is unreachable"),
            Fallback = _ => A,
        };

        using var result = await rig.FanOut().ForwardAsync(request, default);

        Assert.Equal([true], result.FellBack);
        Assert.Equal([2f, 4f], result.Output.ToArray());
        Assert.Contains(result.Trace, t => t.Uid == A && !t.Local && t.Outcome == CallOutcome.Unreachable);
    }

    [Fact]
    public async Task SlowFirstReplica_IsHedgedAfterItsP95_AndTheFastReplicaWins()
    {
        var rig = new Rig();
        rig.Remote.With("slow", "ffn.0", new(Scale: 1f, Delay: TimeSpan.FromSeconds(1))).With("fast", "ffn.0", new(Scale: 7f));
        var slow = Host(A, "slow", 1, queue: 0);
        // Never called, the fast host costs what it announced (20 ms × 6), more than the slow one's 10 ms measured.
        var fast = Host(A, "fast", 2, queue: 5, p50Ms: 20);
        rig.Health.Record(slow.Host, CallOutcome.Ok, TimeSpan.FromMilliseconds(10));
        using var input = Batch(1);
        var request = new FanOutRequest
        {
            Input = input,
            Choices = [[new(A, 1f)]],
            Hosts = new Dictionary<ExpertUid, IReadOnlyList<ExpertHostInfo>> { [A] = [fast, slow] },
        };

        var running = rig.FanOut().ForwardAsync(request, default);
        // Armed: the fan-out deadline, the slow host's delay, and the hedge at its p95.
        await rig.Time.WaitForTimersAsync(3, new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        Assert.Equal(["slow"], rig.Remote.Calls.Select(c => c.Host));
        rig.Time.Advance(TimeSpan.FromMilliseconds(10));
        using var result = await running.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal([7f, 14f], result.Output.ToArray());
        Assert.Equal(["slow", "fast"], rig.Remote.Calls.Select(c => c.Host));
        Assert.Equal([("slow", "ffn.0")], rig.Remote.Cancelled);
        var trace = Assert.Single(result.Trace);
        Assert.True(trace.Hedged);
        Assert.Contains("(hedged)", trace.ToString());
        Assert.False(rig.Health.IsBackedOff(slow.Host));
        // The cancelled call is no longer counted in flight, and its cancellation is not measured.
        Assert.Equal(10, rig.Health.Cost(slow), precision: 1);
    }

    [Fact]
    public async Task NoAnswerAndNoFallback_FailsListingEveryExpertHostOutcomeAndTime()
    {
        var rig = new Rig();
        rig.Remote.With("a", "ffn.0", new(Fail: CallOutcome.Rejected));
        using var input = Batch(1);
        var request = new FanOutRequest
        {
            Input = input,
            Choices = [[new(A, 0.5f), new(B, 0.5f)]],
            Hosts = new Dictionary<ExpertUid, IReadOnlyList<ExpertHostInfo>> { [A] = [Host(A, "a", 1)] },
        };
        var e = await Assert.ThrowsAsync<ExpertCallFailedException>(() => rig.FanOut(withLocal: false).ForwardAsync(request, default));
        Assert.Contains("1 of 1 samples got no expert answer", e.Message);
        Assert.Contains("ffn.0 at " + PeerIdentity.FromSeed(1).PeerId + ": Rejected", e.Message);
        Assert.Contains("ffn.1 at none: Unreachable (no live host is announced)", e.Message);
        Assert.Contains(" ms, 1 rows", e.Message);
    }

    [Fact]
    public void PeerHealth_BacksOffFiveSecondsTimesTwoToTheN_AndSuccessClearsIt()
    {
        var time = new ManualTimeProvider();
        var health = new PeerHealth(new RoutingOptions(), time);
        var peer = PeerIdentity.FromSeed(7).PeerId;
        health.Record(peer, CallOutcome.Timeout, TimeSpan.Zero);
        time.Advance(TimeSpan.FromSeconds(4.9));
        Assert.True(health.IsBackedOff(peer));
        time.Advance(TimeSpan.FromSeconds(0.1));
        Assert.False(health.IsBackedOff(peer));
        health.Record(peer, CallOutcome.Unreachable, TimeSpan.Zero);
        time.Advance(TimeSpan.FromSeconds(9.9));
        Assert.True(health.IsBackedOff(peer));
        health.Record(peer, CallOutcome.Ok, TimeSpan.FromMilliseconds(3));
        Assert.False(health.IsBackedOff(peer));
        Assert.Equal(TimeSpan.FromMilliseconds(3), health.P95(peer));
    }
}
