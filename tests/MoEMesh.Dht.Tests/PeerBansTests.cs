using MoEMesh.Dht.Ids;
using MoEMesh.Dht.Node;

namespace MoEMesh.Dht.Tests;

public class PeerBansTests
{
    [Theory]
    [InlineData(1, 5)]
    [InlineData(2, 10)]
    [InlineData(3, 20)]
    [InlineData(6, 160)]
    [InlineData(7, 300)]
    [InlineData(40, 300)]
    public void Duration_IsFiveSecondsTimesTwoToTheN_CappedAtBanMax(int failures, int seconds)
    {
        Assert.Equal(TimeSpan.FromSeconds(seconds), PeerBans.Duration(failures, new DhtOptions()));
    }

    [Fact]
    public void Ban_Doubles_AndSuccessClearsIt()
    {
        var now = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var bans = new PeerBans(new DhtOptions());
        var id = NodeId.Random(new Random(1));
        Assert.Equal(TimeSpan.FromSeconds(5), bans.Fail(id, now));
        Assert.True(bans.IsBanned(id, now + TimeSpan.FromSeconds(4)));
        Assert.False(bans.IsBanned(id, now + TimeSpan.FromSeconds(5)));
        Assert.Equal(TimeSpan.FromSeconds(10), bans.Fail(id, now + TimeSpan.FromSeconds(5)));
        bans.Clear(id);
        Assert.False(bans.IsBanned(id, now + TimeSpan.FromSeconds(6)));
        Assert.Equal(TimeSpan.FromSeconds(5), bans.Fail(id, now + TimeSpan.FromSeconds(6)));
    }

    [Fact]
    public void Banned_ListsThePeersBannedNow_WithTheirPeerIdAndFailures()
    {
        var now = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var bans = new PeerBans(new DhtOptions());
        var peer = Protocol.Identity.PeerIdentity.FromSeed(5).PeerId;
        var named = NodeId.Of(peer);
        var unnamed = NodeId.Random(new Random(2));
        bans.Fail(named, now, peer);
        bans.Fail(named, now + TimeSpan.FromSeconds(6));
        bans.Fail(unnamed, now);

        var banned = bans.Banned(now + TimeSpan.FromSeconds(7)).ToArray();

        var entry = Assert.Single(banned);
        Assert.Equal((named, (Protocol.Identity.PeerId?)peer, 2), (entry.Id, entry.PeerId, entry.Failures));
        Assert.Equal(now + TimeSpan.FromSeconds(16), entry.Until);
    }
}
