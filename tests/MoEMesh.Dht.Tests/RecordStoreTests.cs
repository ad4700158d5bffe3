using MoEMesh.Dht.Records;
using MoEMesh.Dht.Storage;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Dht.Tests;

public class RecordStoreTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly RecordOrigin Origin = new(PeerIdentityCache.A.PeerId, "10.0.0.0/24");

    private static RecordOrigin From(string network, int peer = 0) => new(PeerIdentity.FromSeed(9000 + peer).PeerId, network);

    private static RecordStore Store(DhtOptions? options = null)
    {
        options ??= new DhtOptions();
        return new RecordStore(options, new RecordValidator(options));
    }

    private static DhtRecord Plain(string key, byte value, int seconds) => DhtRecord.Unsigned(key, null, new[] { value }, Now + TimeSpan.FromSeconds(seconds));

    private static DhtRecord Entry(string key, string subkey, byte value, int seconds) => DhtRecord.Unsigned(key, subkey, new[] { value }, Now + TimeSpan.FromSeconds(seconds));

    [Fact]
    public void LaterExpiration_Wins_EarlierIsOutdated()
    {
        var store = Store();
        Assert.Equal(StoreStatus.Stored, store.TryStore(Plain("k", 1, 60), Origin, Now).Status);
        Assert.Equal(StoreStatus.Outdated, store.TryStore(Plain("k", 2, 30), Origin, Now).Status);
        Assert.Equal(1, store.Get("k", Now)[0].Value.Span[0]);
        Assert.Equal(StoreStatus.Stored, store.TryStore(Plain("k", 3, 90), Origin, Now).Status);
        Assert.Equal(3, store.Get("k", Now)[0].Value.Span[0]);
        Assert.Equal(1, store.Count);
    }

    [Fact]
    public void Unrenewed_IsWhatNobodyStoredForAPeriod_AndOutlivesTheNext()
    {
        var store = Store();
        var period = TimeSpan.FromMinutes(10);
        store.TryStore(Plain("long", 1, 3600), Origin, Now);
        store.TryStore(Plain("short", 2, 300), Origin, Now);
        store.TryStore(Entry("dict", "a", 3, 3600), Origin, Now);
        store.TryStore(Entry("dict", "b", 4, 3600), Origin, Now);
        Assert.Empty(store.Unrenewed(Now + TimeSpan.FromMinutes(9), period));

        var later = Now + period;
        Assert.Equal(["dict/a", "dict/b", "long/"], store.Unrenewed(later, period).Select(r => $"{r.Key}/{r.Subkey}").Order());

        // The same record stored again (a holder's republish) renews it, and only it: b's writer renewing b leaves a due.
        store.TryStore(Plain("long", 1, 3600), Origin, later);
        store.TryStore(Entry("dict", "b", 5, 4000), Origin, later);
        Assert.Equal(["dict/a"], store.Unrenewed(later + TimeSpan.FromMinutes(5), period).Select(r => $"{r.Key}/{r.Subkey}"));
        Assert.Equal(["dict/a", "dict/b", "long/"], store.Unrenewed(later + period, period).Select(r => $"{r.Key}/{r.Subkey}").Order());
    }

    [Fact]
    public void SameRecordAgain_IsStored_ButADifferentValueWithTheSameExpiration_IsOutdated()
    {
        var store = Store();
        store.TryStore(Plain("k", 1, 60), Origin, Now);
        Assert.Equal(StoreStatus.Stored, store.TryStore(Plain("k", 1, 60), Origin, Now).Status);
        Assert.Equal(StoreStatus.Outdated, store.TryStore(Plain("k", 9, 60), Origin, Now).Status);
    }

    [Fact]
    public void Subkeys_AreMerged_EachWithItsOwnExpiration()
    {
        var store = Store();
        store.TryStore(Entry("expert:a.0", "host1", 1, 60), Origin, Now);
        store.TryStore(Entry("expert:a.0", "host2", 2, 10), Origin, Now);
        store.TryStore(Entry("expert:a.0", "host1", 3, 30), Origin, Now);
        var held = store.Get("expert:a.0", Now).OrderBy(r => r.Subkey).ToList();
        Assert.Equal(["host1", "host2"], held.Select(r => r.Subkey));
        Assert.Equal(1, held[0].Value.Span[0]);

        var later = Now + TimeSpan.FromSeconds(20);
        Assert.Equal(["host1"], store.Get("expert:a.0", later).Select(r => r.Subkey));
    }

    [Fact]
    public void PlainValue_WithALaterExpiration_DoesNotReplaceADictionary_NorTheOtherWay_WhileTheyLive()
    {
        var store = Store();
        var host = PeerIdentityCache.A;
        var signed = DhtRecord.Signed("expert:ffn.1", host.PeerId.ToString(), new byte[] { 1 }, Now + TimeSpan.FromSeconds(60), host);
        store.TryStore(signed, Origin, Now);
        var attack = store.TryStore(Plain("expert:ffn.1", 2, 3500), new RecordOrigin(PeerIdentityCache.B.PeerId, "10.0.1.0/24"), Now);
        Assert.Equal(StoreStatus.Rejected, attack.Status);
        Assert.Contains("cannot replace it", attack.Reason);
        Assert.Equal(host.PeerId.ToString(), Assert.Single(store.Get("expert:ffn.1", Now)).Subkey);
        // The host's renewal is still taken.
        var renewed = DhtRecord.Signed("expert:ffn.1", host.PeerId.ToString(), new byte[] { 1 }, Now + TimeSpan.FromSeconds(120), host);
        Assert.Equal(StoreStatus.Stored, store.TryStore(renewed, Origin, Now).Status);

        store.TryStore(Plain("k", 1, 60), Origin, Now);
        Assert.Equal(StoreStatus.Rejected, store.TryStore(Entry("k", "a", 2, 3500), Origin, Now).Status);
        // Once what the key held has expired, the other kind may take it.
        Assert.Equal(StoreStatus.Stored, store.TryStore(Entry("k", "a", 3, 3500), Origin, Now + TimeSpan.FromSeconds(61)).Status);
    }

    [Fact]
    public void Merge_PrefersSignedEntries_ToAnUnsignedPlainValueFromAHostileReplica()
    {
        var host = PeerIdentityCache.A;
        var merger = new RecordMerger("expert:ffn.1");
        merger.Add(DhtRecord.Signed("expert:ffn.1", host.PeerId.ToString(), new byte[] { 1 }, Now + TimeSpan.FromSeconds(60), host));
        merger.Add(Plain("expert:ffn.1", 9, 3500));
        Assert.Equal(host.PeerId.ToString(), Assert.Single(merger.ToValue()!.Records).Subkey);
    }

    [Fact]
    public void Purge_DropsExpiredEntries_AndTheirBytes()
    {
        var store = Store();
        store.TryStore(Entry("k", "a", 1, 10), Origin, Now);
        var kept = Entry("k", "b", 1, 100);
        store.TryStore(kept, Origin, Now);
        store.TryStore(Plain("j", 1, 10), Origin, Now);
        store.Purge(Now + TimeSpan.FromSeconds(50));
        Assert.Equal(1, store.Count);
        Assert.Equal(RecordStore.Cost(kept), store.Bytes);
        Assert.Equal(RecordStore.Cost(kept), store.BytesFrom(Origin.Peer));
        Assert.Equal(RecordStore.Cost(kept), store.BytesFromNetwork(Origin.Network));
        Assert.Equal(["k"], store.Keys);
    }

    [Fact]
    public void Cost_CountsEveryStoredByte_PlusTheOverhead()
    {
        var host = PeerIdentityCache.A;
        var signed = DhtRecord.Signed("expert:ffn.1", host.PeerId.ToString(), new byte[100], Now + TimeSpan.FromSeconds(60), host);
        Assert.Equal(RecordStore.EntryOverhead + "expert:ffn.1".Length + host.PeerId.ToString().Length + 100 + signed.PublicKey.Length + signed.Signature.Length,
            RecordStore.Cost(signed));
    }

    [Fact]
    public void FullNode_OneNetworkFillsAtMostItsShare_AndAnotherNetworkStillGetsIn()
    {
        long cost = RecordStore.Cost(Plain("k00", 1, 60));
        var store = Store(new DhtOptions { MaxStoredBytes = 10 * cost });
        // A flood of fresh identities, all from one network, fills the node.
        for (int i = 0; i < 10; i++) Assert.Equal(StoreStatus.Stored, store.TryStore(Plain($"k{i:00}", 1, 60 + i), From("6.6.6.0/24", i), Now).Status);
        var more = store.TryStore(Plain("k10", 1, 60), From("6.6.6.0/24", 10), Now);
        Assert.Equal(StoreStatus.Full, more.Status);
        Assert.Contains("MaxStoredBytes", more.Reason);
        Assert.Contains("6.6.6.0/24", more.Reason);

        // Another network is owed half of a node two networks share: its stores evict the flood's
        // soonest-expiring entries.
        for (int i = 0; i < 5; i++) Assert.Equal(StoreStatus.Stored, store.TryStore(Plain($"h{i:00}", 1, 600), From("10.1.2.0/24"), Now).Status);
        Assert.Equal(10 * cost, store.Bytes);
        Assert.Equal(5 * cost, store.BytesFromNetwork("10.1.2.0/24"));
        Assert.Empty(store.Get("k00", Now));
        Assert.NotEmpty(store.Get("k09", Now));
        var sixth = store.TryStore(Plain("h05", 1, 600), From("10.1.2.0/24"), Now);
        Assert.Equal(StoreStatus.Full, sixth.Status);
        Assert.Contains("share of 2 networks", sixth.Reason);
        // Updating an entry already held still works when full.
        Assert.Equal(StoreStatus.Stored, store.TryStore(Plain("h00", 2, 900), From("10.1.2.0/24"), Now).Status);
    }

    [Fact]
    public void FullKey_IdentitiesFromOneNetwork_CannotCrowdOutTheHostsOfOthers()
    {
        long cost = RecordStore.Cost(Entry("expert:ffn.1", "s00", 1, 60));
        var store = Store(new DhtOptions { MaxBytesPerKey = 8 * cost });
        for (int i = 0; i < 8; i++) store.TryStore(Entry("expert:ffn.1", $"s{i:00}", 1, 60), From("6.6.6.0/24", i), Now);
        Assert.Equal(StoreStatus.Full, store.TryStore(Entry("expert:ffn.1", "s08", 1, 60), From("6.6.6.0/24", 8), Now).Status);
        // Honest hosts from two other networks still announce: a third of the key each.
        foreach (var (network, host) in new[] { ("10.1.2.0/24", "h01"), ("10.9.9.0/24", "h02") })
            Assert.Equal(StoreStatus.Stored, store.TryStore(Entry("expert:ffn.1", host, 1, 600), From(network), Now).Status);
        Assert.Equal(8, store.Get("expert:ffn.1", Now).Count);
        Assert.Equal(6 * cost, store.BytesFromNetwork("6.6.6.0/24"));
        // Other keys are untouched by a full one.
        Assert.Equal(StoreStatus.Stored, store.TryStore(Entry("expert:ffn.2", "s00", 1, 60), From("6.6.6.0/24"), Now).Status);
    }

    [Fact]
    public void PerOriginBound_StopsOnePeer_ButNotOthers()
    {
        long cost = RecordStore.Cost(Plain("a", 1, 60));
        var store = Store(new DhtOptions { MaxBytesPerOrigin = 2 * cost });
        store.TryStore(Plain("a", 1, 60), Origin, Now);
        store.TryStore(Plain("b", 1, 60), Origin, Now);
        var refused = store.TryStore(Plain("c", 1, 60), Origin, Now);
        Assert.Equal(StoreStatus.Full, refused.Status);
        Assert.Contains($"MaxBytesPerOrigin = {2 * cost}", refused.Reason);
        Assert.Equal(StoreStatus.Stored, store.TryStore(Plain("c", 1, 60), From(Origin.Network, 1), Now).Status);
        // Renewing its own entry is not growth.
        Assert.Equal(StoreStatus.Stored, store.TryStore(Plain("a", 1, 90), Origin, Now).Status);
    }

    [Fact]
    public void ExpiredEntries_FreeRoom_BeforeAnythingIsEvictedOrRefused()
    {
        long cost = RecordStore.Cost(Plain("old", 1, 5));
        var store = Store(new DhtOptions { MaxStoredBytes = cost });
        store.TryStore(Plain("old", 1, 5), Origin, Now);
        Assert.Equal(StoreStatus.Stored, store.TryStore(Plain("new", 1, 60), Origin, Now + TimeSpan.FromSeconds(10)).Status);
        Assert.Equal(1, store.Count);
    }

    [Fact]
    public void Merger_TakesNoNewSubkeysBeyondItsBytes()
    {
        long cost = RecordStore.Cost(Entry("k", "s0", 1, 60));
        var merger = new RecordMerger("k", maxBytes: 3 * cost);
        for (int i = 0; i < 10; i++) merger.Add(Entry("k", $"s{i}", 1, 60));
        merger.Add(Entry("k", "s0", 2, 90)); // a newer entry for a held subkey is still taken
        var value = merger.ToValue()!;
        Assert.Equal(["s0", "s1", "s2"], value.Records.Select(r => r.Subkey));
        Assert.Equal(2, value["s0"]!.Value.Span[0]);
    }
}

/// <summary>Two identities shared by tests (key generation is the slow part).</summary>
internal static class PeerIdentityCache
{
    public static PeerIdentity A { get; } = PeerIdentity.FromSeed(101);

    public static PeerIdentity B { get; } = PeerIdentity.FromSeed(102);
}
