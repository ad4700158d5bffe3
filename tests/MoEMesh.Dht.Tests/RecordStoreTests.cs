using MoEMesh.Dht.Records;
using MoEMesh.Dht.Storage;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Dht.Tests;

public class RecordStoreTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly PeerId Origin = PeerIdentityCache.A.PeerId;

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
        var attack = store.TryStore(Plain("expert:ffn.1", 2, 3500), PeerIdentityCache.B.PeerId, Now);
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
    public void Purge_DropsExpiredEntries_AndTheirCounts()
    {
        var store = Store();
        store.TryStore(Entry("k", "a", 1, 10), Origin, Now);
        store.TryStore(Entry("k", "b", 1, 100), Origin, Now);
        store.TryStore(Plain("j", 1, 10), Origin, Now);
        store.Purge(Now + TimeSpan.FromSeconds(50));
        Assert.Equal(1, store.Count);
        Assert.Equal(1, store.CountFrom(Origin));
        Assert.Equal(["k"], store.Keys);
    }

    [Fact]
    public void TotalBound_RefusesNewEntries_WithTheLimitNamed()
    {
        var store = Store(new DhtOptions { MaxRecords = 3 });
        for (int i = 0; i < 3; i++) Assert.Equal(StoreStatus.Stored, store.TryStore(Plain($"k{i}", 1, 60), Origin, Now).Status);
        var refused = store.TryStore(Plain("k3", 1, 60), Origin, Now);
        Assert.Equal(StoreStatus.Full, refused.Status);
        Assert.Contains("MaxRecords = 3", refused.Reason);
        // Updating an entry already held still works.
        Assert.Equal(StoreStatus.Stored, store.TryStore(Plain("k0", 2, 90), Origin, Now).Status);
    }

    [Fact]
    public void PerOriginBound_StopsOnePeer_ButNotOthers()
    {
        var store = Store(new DhtOptions { MaxRecordsPerOrigin = 2 });
        var other = PeerIdentityCache.B.PeerId;
        store.TryStore(Plain("a", 1, 60), Origin, Now);
        store.TryStore(Plain("b", 1, 60), Origin, Now);
        var refused = store.TryStore(Plain("c", 1, 60), Origin, Now);
        Assert.Equal(StoreStatus.Full, refused.Status);
        Assert.Contains("MaxRecordsPerOrigin = 2", refused.Reason);
        Assert.Equal(StoreStatus.Stored, store.TryStore(Plain("c", 1, 60), other, Now).Status);
    }

    [Fact]
    public void ExpiredSlotForFull_FreesRoomAfterPurge()
    {
        var store = Store(new DhtOptions { MaxRecords = 1 });
        store.TryStore(Plain("old", 1, 5), Origin, Now);
        Assert.Equal(StoreStatus.Stored, store.TryStore(Plain("new", 1, 60), Origin, Now + TimeSpan.FromSeconds(10)).Status);
    }
}

/// <summary>Two identities shared by tests (key generation is the slow part).</summary>
internal static class PeerIdentityCache
{
    public static PeerIdentity A { get; } = PeerIdentity.FromSeed(101);

    public static PeerIdentity B { get; } = PeerIdentity.FromSeed(102);
}
