using MoEMesh.Node.Reachability;

namespace MoEMesh.Node.Tests;

/// <summary>
/// What a node concludes from the peers it asked to dial it back: an echo from a dial at its announced address
/// makes it reachable; an address elsewhere (its IP as peers see it, behind a NAT with the port forwarded) is
/// believed only when two peers reached it there; peers that answered without an echo make it unreachable.
/// </summary>
public sealed class ReachabilityReportTests
{
    private const string Announced = "192.168.1.5:7700", Public = "203.0.113.7:7700";
    private static readonly DateTimeOffset At = DateTimeOffset.UnixEpoch;

    private static DialbackResult Echo(string peer, string dialled) => new(peer, true, null, "203.0.113.7", TimeSpan.Zero, dialled);

    private static DialbackResult NoEcho(string peer) => new(peer, false, "connection refused", "203.0.113.7", TimeSpan.Zero, Public);

    [Fact]
    public void AnEchoAtTheAnnouncedAddress_MakesItReachableThere()
    {
        var report = ReachabilityReport.Of(Announced, At, [NoEcho("a"), Echo("b", Announced)]);
        Assert.Equal(Reach.Reachable, report.State);
        Assert.Equal(Announced, report.ReachedAt);
    }

    [Fact]
    public void OnePeerReachingItElsewhere_IsNotBelieved()
    {
        var report = ReachabilityReport.Of(Announced, At, [Echo("a", Public), NoEcho("b")]);
        Assert.Equal(Reach.Unreachable, report.State);
        Assert.Null(report.ReachedAt);
    }

    [Fact]
    public void TwoPeersReachingItAtTheSameOtherAddress_MakeItReachableThere()
    {
        var report = ReachabilityReport.Of(Announced, At, [Echo("a", Public), Echo("b", Public), NoEcho("c")]);
        Assert.Equal(Reach.Reachable, report.State);
        Assert.Equal(Public, report.ReachedAt);
    }

    [Fact]
    public void PeersThatAnsweredWithoutAnEcho_MakeItUnreachable_AndNoAnswerLeavesItUnknown()
    {
        Assert.Equal(Reach.Unreachable, ReachabilityReport.Of(Announced, At, [NoEcho("a"), NoEcho("b")]).State);
        var silent = new DialbackResult("a", false, "no answer", null, null);
        Assert.Equal(Reach.Unknown, ReachabilityReport.Of(Announced, At, [silent]).State);
    }
}
