using System.Text;
using MoEMesh.Dht.Records;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Directory;
using MoEMesh.Testing;

namespace MoEMesh.Routing.Tests;

public sealed class ExpertDirectoryTests
{
    private static readonly PeerIdentity HostA = PeerIdentity.FromSeed(901);
    private static readonly PeerIdentity HostB = PeerIdentity.FromSeed(902);

    private static ExpertRecord Record(string address) => new() { Addresses = { address }, Type = "ffn", SchemaHash = "h" };

    /// <summary>Announces <paramref name="uids"/> at <paramref name="host"/>, serving at <paramref name="address"/>, for a minute.</summary>
    private static Task DeclareAsync(ExpertDirectory directory, TimeProvider time, PeerIdentity host, string address, params ExpertUid[] uids) =>
        directory.DeclareAsync(host, uids.Select(u => (u, Record(address))).ToArray(), time.GetUtcNow() + TimeSpan.FromSeconds(60), default);

    [Fact]
    public async Task Declare_WritesPrefixEntries_AndSuccessorsListLiveChildren()
    {
        var time = new ManualTimeProvider();
        var directory = new ExpertDirectory(new MemoryDht(time), time);
        await DeclareAsync(directory, time, HostA, "10.0.0.1:1", ExpertUid.Parse("ffn.3.14"), ExpertUid.Parse("ffn.3.2"));

        var root = ExpertPrefix.Parse("ffn.");
        var three = ExpertPrefix.Parse("ffn.3.");
        var found = await directory.FindSuccessorsAsync([root, three], default);
        Assert.Equal([3], found[root].Children.Keys);
        Assert.Equal(["ffn.3.14", "ffn.3.2"], found[three].Children.Values.Select(u => u.Value).Order());
        Assert.Equal(ExpertUid.Parse("ffn.3.14"), found[three].Children[14]);
    }

    [Fact]
    public async Task List_WalksTheGridLevelByLevel_AndFindsEveryLiveUidInGridOrder()
    {
        var time = new ManualTimeProvider();
        var dht = new MemoryDht(time);
        var directory = new ExpertDirectory(dht, time);
        await DeclareAsync(directory, time, HostA, "10.0.0.1:1", ExpertUid.Parse("ffn.0.1"), ExpertUid.Parse("ffn.10.0"), ExpertUid.Parse("ffn.2.3"));
        await DeclareAsync(directory, time, HostB, "10.0.0.2:1", ExpertUid.Parse("ffn.0.1"), ExpertUid.Parse("ffn.2.0"), ExpertUid.Parse("att.0.0"));
        int before = dht.KeysLookedUp;

        var (uids, truncated) = await directory.ListAsync(ExpertPrefix.Parse("ffn."), 100, default);

        Assert.Equal(["ffn.0.1", "ffn.2.0", "ffn.2.3", "ffn.10.0"], uids.Select(u => u.Value));
        Assert.False(truncated);
        // The root, then its three rows: four prefix keys, nothing of the other grid.
        Assert.Equal(before + 4, dht.KeysLookedUp);
    }

    [Fact]
    public async Task List_StopsAtTheLimit_AndSaysMoreWereLeftOut()
    {
        var time = new ManualTimeProvider();
        var directory = new ExpertDirectory(new MemoryDht(time), time);
        await DeclareAsync(directory, time, HostA, "10.0.0.1:1", Enumerable.Range(0, 3).SelectMany(r => Enumerable.Range(0, 3).Select(c => ExpertUid.Parse($"ffn.{r}.{c}"))).ToArray());

        var (few, cut) = await directory.ListAsync(ExpertPrefix.Parse("ffn."), 4, default);
        Assert.True(cut);
        Assert.Equal(4, few.Count);
        var (all, whole) = await directory.ListAsync(ExpertPrefix.Parse("ffn."), 9, default);
        Assert.False(whole);
        Assert.Equal(9, all.Count);
        Assert.Empty((await directory.ListAsync(ExpertPrefix.Parse("none."), 9, default)).Uids);
    }

    [Fact]
    public async Task List_OfAGridAHostMadeDeep_StopsAtMaxListDepth_AndAnEntryPastTheUidLengthLimitIsSkipped()
    {
        var time = new ManualTimeProvider();
        var dht = new MemoryDht(time);
        var directory = new ExpertDirectory(dht, time);
        // A uid of 126 coordinates (the length limit), and a fair one beside it.
        var deep = ExpertUid.Parse("ffn." + string.Join('.', Enumerable.Repeat("0", 126)));
        await DeclareAsync(directory, time, HostA, "10.0.0.1:1", deep, ExpertUid.Parse("ffn.1.1"));
        // An entry whose subkey names a coordinate that would make the next prefix longer than any uid may be.
        var longPrefix = deep.Prefix(123);
        await dht.StoreAsync(DhtRecord.Signed(ExpertDirectory.KeyOf(longPrefix), $"123456789:{HostA.PeerId}", Encoding.UTF8.GetBytes(deep.Value),
            time.GetUtcNow() + TimeSpan.FromSeconds(60), HostA), default);

        var (uids, _) = await directory.ListAsync(ExpertPrefix.Parse("ffn."), 100, default);

        Assert.Equal(["ffn.1.1"], uids.Select(u => u.Value));
        // Its own entry at coordinate 0 stands; the made-up one is skipped rather than built into a prefix.
        Assert.Equal([0], (await directory.FindSuccessorsAsync([longPrefix], default))[longPrefix].Children.Keys);
    }

    [Fact]
    public async Task AHostsLoad_IsTakenWithinWhatALoadCanBe()
    {
        var time = new ManualTimeProvider();
        var directory = new ExpertDirectory(new MemoryDht(time), time);
        var uid = ExpertUid.Parse("ffn.2.2");
        var record = Record("10.0.0.1:1");
        record.Load = new ExpertLoad { QueueDepth = -5, LatencyP50Ms = double.NaN, LatencyP95Ms = double.NegativeInfinity, RowsLastMinute = -1 };
        await directory.DeclareAsync(HostA, [(uid, record)], time.GetUtcNow() + TimeSpan.FromSeconds(60), default);

        var load = Assert.Single((await directory.FindAsync([uid], default))[uid]).Load;

        Assert.Equal((0, 0.0, 0.0, 0L), (load.QueueDepth, load.LatencyP50Ms, load.LatencyP95Ms, load.RowsLastMinute));
    }

    [Fact]
    public async Task ReplicasOfOneUid_AreAllFound()
    {
        var time = new ManualTimeProvider();
        var directory = new ExpertDirectory(new MemoryDht(time), time);
        var uid = ExpertUid.Parse("ffn.1.1");
        await DeclareAsync(directory, time, HostA, "10.0.0.1:1", uid);
        await DeclareAsync(directory, time, HostB, "10.0.0.2:1", uid);
        var hosts = (await directory.FindAsync([uid], default))[uid];
        Assert.Equal(new[] { HostA.PeerId, HostB.PeerId }.Select(p => p.ToString()).Order(), hosts.Select(h => h.Host.ToString()).Order());
    }

    [Fact]
    public async Task EmptyPrefix_IsCachedAsEmpty_ForTheNegativeTtl_ThenAskedAgain()
    {
        var time = new ManualTimeProvider();
        var dht = new MemoryDht(time);
        var directory = new ExpertDirectory(dht, time, new ExpertDirectoryOptions { NegativeCacheTtl = TimeSpan.FromSeconds(5) });
        var prefix = ExpertPrefix.Parse("ffn.7.");

        Assert.True((await directory.FindSuccessorsAsync([prefix], default))[prefix].IsEmpty);
        int asked = dht.KeysLookedUp;
        // An expert appears under the prefix; within the TTL the cached "empty" still answers, without a lookup.
        await DeclareAsync(directory, time, HostA, "10.0.0.1:1", ExpertUid.Parse("ffn.7.1"));
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.True((await directory.FindSuccessorsAsync([prefix], default))[prefix].IsEmpty);
        Assert.Equal(asked, dht.KeysLookedUp);

        time.Advance(TimeSpan.FromSeconds(2));
        var found = (await directory.FindSuccessorsAsync([prefix], default))[prefix];
        Assert.Equal(asked + 1, dht.KeysLookedUp);
        Assert.Equal("ffn.7.1", found.Children[1].Value);
    }

    [Fact]
    public async Task FoundPrefixesAndHosts_AreReusedForThePositiveTtl_ThenAskedAgain()
    {
        var time = new ManualTimeProvider();
        var dht = new MemoryDht(time);
        var directory = new ExpertDirectory(dht, time, new ExpertDirectoryOptions { PositiveCacheTtl = TimeSpan.FromSeconds(5) });
        var uid = ExpertUid.Parse("ffn.7.1");
        await DeclareAsync(directory, time, HostA, "10.0.0.1:1", uid);
        var prefix = ExpertPrefix.Parse("ffn.7.");
        await directory.FindSuccessorsAsync([prefix], default);
        await directory.FindAsync([uid], default);
        Assert.Equal(2, dht.KeysLookedUp);

        // A second host appears; within the TTL the cached answers stand, without lookups.
        await DeclareAsync(directory, time, HostB, "10.0.0.2:1", uid);
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.Single((await directory.FindAsync([uid], default))[uid]);
        await directory.FindSuccessorsAsync([prefix], default);
        Assert.Equal(2, dht.KeysLookedUp);

        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(2, (await directory.FindAsync([uid], default))[uid].Count);
        Assert.Equal(3, dht.KeysLookedUp);
    }

    [Fact]
    public async Task Rediscover_AsksTheDhtPastTheCache_AndRefreshesIt()
    {
        var time = new ManualTimeProvider();
        var dht = new MemoryDht(time);
        var directory = new ExpertDirectory(dht, time);
        var uid = ExpertUid.Parse("ffn.7.1");
        await DeclareAsync(directory, time, HostA, "10.0.0.1:1", uid);
        Assert.Single((await directory.FindAsync([uid], default))[uid]);
        await DeclareAsync(directory, time, HostB, "10.0.0.2:1", uid);

        Assert.Equal(2, (await directory.RediscoverAsync(uid, default)).Count);
        Assert.Equal(2, dht.KeysLookedUp);
        Assert.Equal(2, (await directory.FindAsync([uid], default))[uid].Count);
        Assert.Equal(2, dht.KeysLookedUp);
    }

    [Fact]
    public async Task MalformedPrefixEntries_AreIgnored()
    {
        var host = PeerIdentity.FromSeed(5).PeerId.ToString();
        var time = new ManualTimeProvider();
        var dht = new MemoryDht(time);
        var directory = new ExpertDirectory(dht, time);
        var expiration = time.GetUtcNow() + TimeSpan.FromSeconds(60);
        await dht.StoreManyAsync(
        [
            DhtRecord.Unsigned("prefix:ffn.", "x:" + host, Encoding.UTF8.GetBytes("ffn.1.1"), expiration),     // not a coordinate
            DhtRecord.Unsigned("prefix:ffn.", "2:" + host, Encoding.UTF8.GetBytes("ffn.3.1"), expiration),     // uid not under ffn.2.
            DhtRecord.Unsigned("prefix:ffn.", "4:" + host, Encoding.UTF8.GetBytes("not a uid"), expiration),
            DhtRecord.Unsigned("prefix:ffn.", "6", Encoding.UTF8.GetBytes("ffn.6.0"), expiration),           // no host named
            DhtRecord.Unsigned("prefix:ffn.", "5:" + host, Encoding.UTF8.GetBytes("ffn.5.0"), expiration),
        ], default);
        var root = ExpertPrefix.Parse("ffn.");
        Assert.Equal([5], (await directory.FindSuccessorsAsync([root], default))[root].Children.Keys);
    }

    [Fact]
    public async Task ZeroCacheLifetimes_SwitchTheCachesOff_AndNegativeOnesAreRefused()
    {
        var time = new ManualTimeProvider();
        var dht = new MemoryDht(time);
        var directory = new ExpertDirectory(dht, time, new ExpertDirectoryOptions { NegativeCacheTtl = TimeSpan.Zero, PositiveCacheTtl = TimeSpan.Zero });
        var uid = ExpertUid.Parse("ffn.1.1");
        Assert.Empty((await directory.FindAsync([uid], default))[uid]);
        await DeclareAsync(new ExpertDirectory(dht, time), time, HostA, "10.0.0.1:1", uid);
        Assert.Single((await directory.FindAsync([uid], default))[uid]); // not cached as absent
        var e = Assert.Throws<ArgumentException>(() => new ExpertDirectory(dht, time, new ExpertDirectoryOptions { PositiveCacheTtl = TimeSpan.FromSeconds(-1) }));
        Assert.Equal("ExpertDirectoryOptions:PositiveCacheTtl: must be between 0 and a day (1.00:00:00); got -00:00:01.", e.Message);
    }
}
