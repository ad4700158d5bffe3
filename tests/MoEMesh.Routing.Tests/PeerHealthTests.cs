using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Calling;
using MoEMesh.Routing.Directory;
using MoEMesh.Testing;

namespace MoEMesh.Routing.Tests;

/// <summary>Which replica a gating node calls first: by measured latency, calls in flight and announced load, on a manual clock.</summary>
public class PeerHealthTests
{
    private static readonly ExpertUid Uid = ExpertUid.Parse("ffn.0");
    private readonly ManualTimeProvider _time = new();
    private readonly PeerHealth _health;
    private readonly ExpertHostInfo _a = Host(1), _b = Host(2);

    public PeerHealthTests() => _health = new PeerHealth(new RoutingOptions { LoadDecay = TimeSpan.FromSeconds(10) }, _time);

    private static ExpertHostInfo Host(int seed, int queue = 0, double p50Ms = 0) =>
        new(Uid, PeerIdentity.FromSeed(seed).PeerId, [new PeerAddress("127.0.0.1", 7000 + seed)], "ffn", "h",
            new ExpertLoad { QueueDepth = queue, LatencyP50Ms = p50Ms }, 0, DateTimeOffset.MaxValue);

    private ExpertHostInfo First() => _health.Order([_a, _b])[0];

    private void Answered(ExpertHostInfo host, double milliseconds) => _health.Record(host.Host, CallOutcome.Ok, TimeSpan.FromMilliseconds(milliseconds));

    [Fact]
    public void TheReplicaAnsweringFaster_IsCalledFirst()
    {
        Answered(_a, 50);
        Answered(_b, 5);
        Assert.Equal(_b, First());
        Assert.Equal([_b, _a], _health.Order([_b, _a]));
    }

    [Fact]
    public void CallsInFlight_SpreadOverEqualReplicas()
    {
        Answered(_a, 5);
        Answered(_b, 5);
        _health.Started(_a.Host);
        Assert.Equal(_b, First());
        _health.Started(_b.Host);
        _health.Started(_b.Host);
        Assert.Equal(_a, First());
        _health.Ended(_b.Host);
        _health.Ended(_b.Host);
        _health.Ended(_a.Host);
        Assert.Equal(5, _health.Cost(_a), precision: 6);
        Assert.Equal(5, _health.Cost(_b), precision: 6);
    }

    [Fact]
    public void AFastReplicaFullOfCalls_YieldsToASlowerIdleOne()
    {
        Answered(_a, 4);
        Answered(_b, 20);
        for (int i = 0; i < 5; i++) _health.Started(_a.Host);
        // 4 ms × 6 calls > 20 ms × 1.
        Assert.Equal(_b, First());
    }

    [Fact]
    public void ASlowReplica_IsTriedAgain_OnceItsCostHasDecayed()
    {
        Answered(_a, 50);
        Answered(_b, 5);
        // b keeps answering in 5 ms; a gets no calls. 50 × e^(−t / 10 s) falls under 5 at t = 10 × ln 10 ≈ 23 s.
        for (int tenths = 0; tenths < 200; tenths++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(100));
            Answered(_b, 5);
        }
        Assert.Equal(_b, First());
        for (int tenths = 0; tenths < 50; tenths++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(100));
            Answered(_b, 5);
        }
        Assert.Equal(_a, First());
    }

    [Fact]
    public void AReplicaThatRecovers_CostsLessWithEveryFastAnswer()
    {
        Answered(_a, 50);
        var costs = new List<double>();
        for (int i = 0; i < 8; i++)
        {
            Answered(_a, 5);
            costs.Add(_health.Cost(_a));
        }
        Assert.Equal(costs.OrderDescending(), costs);
        Assert.InRange(costs[^1], 5, 10);
    }

    [Fact]
    public void ReplicasNeverMeasured_CostWhatTheyAnnounced_TheirP50TimesTheirQueuePlusOne()
    {
        var busy = Host(3, queue: 3, p50Ms: 4);
        var idle = Host(4, queue: 0, p50Ms: 10);
        Assert.Equal(16, _health.Cost(busy));
        Assert.Equal([idle, busy], _health.Order([busy, idle]));
        // Once measured, what this node saw counts, not the announcement.
        Answered(busy, 2);
        Assert.Equal([busy, idle], _health.Order([busy, idle]));
    }

    [Fact]
    public void ABackedOffReplica_GoesLast_HoweverCheap()
    {
        Answered(_a, 1);
        Answered(_b, 40);
        _health.Record(_a.Host, CallOutcome.Unreachable, TimeSpan.Zero);
        Assert.Equal(_b, First());
    }

    [Fact]
    public void ACallCutUnanswered_RaisesItsHostsCost_ButNeverLowersIt()
    {
        Answered(_a, 5);
        Answered(_b, 20);
        _health.RecordCut(_a.Host, TimeSpan.FromMilliseconds(40));
        Assert.Equal(40, _health.Cost(_a), precision: 6);
        Assert.Equal(_b, First());
        _health.RecordCut(_a.Host, TimeSpan.FromMilliseconds(10));
        Assert.Equal(40, _health.Cost(_a), precision: 6);
        Assert.False(_health.IsBackedOff(_a.Host));
    }

    [Fact]
    public void AHostThatAnnouncedNoLatencyYet_StillCountsItsQueueAndTheCallsInFlight()
    {
        var queued = Host(3, queue: 4);
        var idle = Host(4);
        Assert.Equal(5, _health.Cost(queued));
        Assert.Equal([idle, queued], _health.Order([queued, idle]));
        _health.Started(idle.Host);
        _health.Started(idle.Host);
        Assert.Equal(3, _health.Cost(idle));
    }

    [Fact]
    public void ABackwardAnswer_ClearsFailures_ButIsNotTheHostsForwardLatency()
    {
        Answered(_a, 5);
        _health.Record(_a.Host, CallOutcome.Ok, TimeSpan.FromMilliseconds(80), forward: false);
        Assert.Equal(5, _health.Cost(_a), precision: 6);
        Assert.Equal(TimeSpan.FromMilliseconds(5), _health.P95(_a.Host));

        _health.Record(_a.Host, CallOutcome.Timeout, TimeSpan.FromSeconds(2), forward: false);
        Assert.True(_health.IsBackedOff(_a.Host));
        _health.Record(_a.Host, CallOutcome.Ok, TimeSpan.FromMilliseconds(80), forward: false);
        Assert.False(_health.IsBackedOff(_a.Host));
    }
}
