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

    /// <summary>A peer at <paramref name="peerIp"/> that reached this node at <paramref name="dialled"/>, having seen it come from <paramref name="seen"/>.</summary>
    private static DialbackResult Echo(string peerIp, string dialled, string seen = "203.0.113.7") => new($"{peerIp}:7700", true, null, seen, TimeSpan.Zero, dialled);

    private static DialbackResult NoEcho(string peerIp, string seen = "203.0.113.7") => new($"{peerIp}:7700", false, "could not connect", seen, TimeSpan.Zero, $"{seen}:7700");

    [Fact]
    public void AnEchoAtTheAnnouncedAddress_MakesItReachableThere()
    {
        var report = ReachabilityReport.Of(Announced, At, [Echo("192.168.1.9", Announced, seen: "192.168.1.5"), Echo("192.168.1.10", Announced, seen: "192.168.1.5")]);
        Assert.Equal(Reach.Reachable, report.State);
        Assert.Equal(Announced, report.ReachedAt);
    }

    [Fact]
    public void OnePeerReachingItElsewhere_IsNotBelieved()
    {
        var report = ReachabilityReport.Of(Announced, At, [Echo("198.51.100.1", Public), NoEcho("198.51.101.1")]);
        Assert.Equal(Reach.Unreachable, report.State);
        Assert.Null(report.ReachedAt);
    }

    [Fact]
    public void TwoPeersReachingItAtTheSameOtherAddress_MakeItReachableThere()
    {
        var report = ReachabilityReport.Of(Announced, At, [Echo("198.51.100.1", Public), Echo("198.51.101.1", Public), NoEcho("198.51.102.1")]);
        Assert.Equal(Reach.Reachable, report.State);
        Assert.Equal(Public, report.ReachedAt);
    }

    [Fact]
    public void TwoPeersOfOneNetwork_OrAWrongPortOrAnAddressTheyDidNotSee_AreNotBelieved()
    {
        Assert.Equal(Reach.Unreachable, ReachabilityReport.Of(Announced, At, [Echo("198.51.100.1", Public), Echo("198.51.100.2", Public)]).State);
        Assert.Equal(Reach.Unreachable, ReachabilityReport.Of(Announced, At, [Echo("198.51.100.1", "203.0.113.7:7701"), Echo("198.51.101.1", "203.0.113.7:7701")]).State);
        Assert.Equal(Reach.Unreachable, ReachabilityReport.Of(Announced, At, [Echo("198.51.100.1", "203.0.113.99:7700"), Echo("198.51.101.1", "203.0.113.99:7700")]).State);
    }

    [Fact]
    public void PeersOnItsOwnNetworkReachingIt_DoNotMakeItReachable_WhenPeersThatSeeItPubliclyCannot()
    {
        var report = ReachabilityReport.Of(Announced, At, [Echo("192.168.1.9", Announced, seen: "192.168.1.5"), Echo("192.168.1.10", Announced, seen: "192.168.1.5"), NoEcho("198.51.100.1")]);
        Assert.Equal(Reach.Unreachable, report.State);
    }

    [Fact]
    public void AnEchoThatDoesNotSayWhereItDialled_ConfirmsNothing()
    {
        var report = ReachabilityReport.Of(Announced, At, [new DialbackResult("198.51.100.1:7700", true, null, "203.0.113.7", TimeSpan.Zero, null), Echo("198.51.101.1", Public), Echo("198.51.102.1", Public)]);
        Assert.Equal(Reach.Reachable, report.State);
        Assert.Equal(Public, report.ReachedAt);
    }

    [Fact]
    public void PeersThatAnsweredWithoutAnEcho_MakeItUnreachable_AndNoAnswerLeavesItUnknown()
    {
        Assert.Equal(Reach.Unreachable, ReachabilityReport.Of(Announced, At, [NoEcho("198.51.100.1"), NoEcho("198.51.101.1")]).State);
        var silent = new DialbackResult("198.51.100.1:7700", false, "no answer", null, null);
        Assert.Equal(Reach.Unknown, ReachabilityReport.Of(Announced, At, [silent]).State);
    }
}
