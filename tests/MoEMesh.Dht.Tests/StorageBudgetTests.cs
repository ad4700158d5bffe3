using System.Net;
using MoEMesh.Dht.Records;
using MoEMesh.Dht.Rpc;
using MoEMesh.Dht.Storage;
using MoEMesh.Dht.Transport;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;

namespace MoEMesh.Dht.Tests;

/// <summary>Byte budgets end to end: what a find answer may carry, and how stores are charged to networks.</summary>
public class StorageBudgetTests
{
    private static DhtOptions Small() => new() { MaxBytesPerKey = 8 * 1024, MaxReplyBytes = 8 * 1024 };

    /// <summary>Ten host entries of about 600 bytes under <paramref name="key"/>: most of a key's 8 KiB.</summary>
    private static DhtRecord[] Hosts(string key, DateTimeOffset expiration) =>
        Enumerable.Range(0, 10).Select(i => DhtRecord.Unsigned(key, $"host{i}", new byte[450], expiration)).ToArray();

    [Fact]
    public void FindAnswer_CarriesRecordsUpToMaxReplyBytes_AndSaysWhichItLeftOut()
    {
        Sim.Run(31, async swarm =>
        {
            var node = (await swarm.AddNodeAsync()).Node;
            var asker = new DhtSender(PeerIdentityCache.B.PeerId, null, ClientMode: true);
            var keys = new[] { "big:0", "big:1", "big:2" };
            foreach (var key in keys)
                Assert.All(node.HandleStore(asker, Hosts(key, swarm.In(TimeSpan.FromMinutes(5)))), o => Assert.Equal(StoreStatus.Stored, o.Status));

            var answers = node.HandleFind(asker, keys.Select(FindQuery.ForKey).ToArray());
            Assert.Equal(10, answers[0].Records.Count);
            Assert.False(answers[0].RecordsLeftOut);
            Assert.All(answers.Skip(1), a => Assert.True(a.RecordsLeftOut && a.Records.Count == 0));
            Assert.True(answers[0].Records.Sum(RecordStore.Cost) <= node.Options.MaxReplyBytes);
        }, options: Small);
    }

    [Fact]
    public void GetOfManyKeys_WhoseRecordsExceedOneAnswer_StillFindsEveryEntry()
    {
        Sim.Run(32, async swarm =>
        {
            // Fewer nodes than k: every node is in every key's window, so each find asks for all six keys.
            await swarm.GrowAsync(15);
            var keys = Enumerable.Range(0, 6).Select(i => $"big:{i}").ToArray();
            foreach (var key in keys)
                Assert.All(await swarm.Members[1].Node.StoreManyAsync(Hosts(key, swarm.In(TimeSpan.FromMinutes(5))), default), r => Assert.Equal(5, r.Replicas));
            var found = await swarm.Members[12].Node.GetManyAsync(keys, latest: true, default);
            Assert.All(keys, key => Assert.Equal(10, found[key]!.Records.Count));
        }, options: Small);
    }

    [Fact]
    public async Task StoresOverTheWire_AreChargedToTheCallersNetwork_SoAFloodFromOneNetworkLeavesRoomForOthers()
    {
        long cost = RecordStore.Cost(DhtRecord.Unsigned("k00", null, new byte[400], DateTimeOffset.UtcNow + TimeSpan.FromMinutes(1)));
        var options = new DhtOptions { MaxStoredBytes = 10 * cost };
        using var identity = PeerIdentity.FromSeed(704);
        await using var dht = new DhtNode(identity.PeerId, new Protocol.Addressing.PeerAddress("127.0.0.1", 9), new NoRpc(), options, TimeProvider.System);
        var router = new PeerRouter(TimeProvider.System).MapDht(dht, options);
        var expiration = DateTimeOffset.UtcNow + TimeSpan.FromMinutes(1);

        async Task<StoreStatus> StoreAsync(string key, IPAddress from, int peer)
        {
            var request = new Protocol.Wire.Dht.StoreRequest();
            request.Records.Add(DhtWire.ToWire(DhtRecord.Unsigned(key, null, new byte[400], expiration)));
            using var response = await router.DispatchAsync(new PeerRequest(DhtRpcHandler.StoreMethod, default, Google.Protobuf.MessageExtensions.ToByteArray(request),
                DateTimeOffset.UtcNow + TimeSpan.FromSeconds(5)) { Caller = PeerIdentity.FromSeed(800 + peer).PeerId, RemoteAddress = from }, default);
            return (StoreStatus)response.ParseHeader(Protocol.Wire.Dht.StoreResponse.Parser).Results[0].Status;
        }

        // Ten fresh identities from one /24 fill the node ...
        for (int i = 0; i < 10; i++) Assert.Equal(StoreStatus.Stored, await StoreAsync($"k{i:00}", IPAddress.Parse($"6.6.6.{i + 1}"), i));
        Assert.Equal(StoreStatus.Full, await StoreAsync("k10", IPAddress.Parse("6.6.6.99"), 10));
        // ... and a host from another network still gets its share.
        Assert.Equal(StoreStatus.Stored, await StoreAsync("h00", IPAddress.Parse("203.0.113.7"), 20));
        Assert.Equal(10, dht.StoredRecords);
    }

    private sealed class NoRpc : IDhtRpc
    {
        public Task<DhtRpcResult<PeerId>> PingAsync(DhtSender from, PeerEndpoint target, DateTimeOffset deadline, CancellationToken cancellationToken) =>
            Task.FromResult(DhtRpcResult<PeerId>.Failed(CallOutcome.Unreachable, "no network in this test"));

        public Task<DhtRpcResult<IReadOnlyList<StoreOutcome>>> StoreAsync(DhtSender from, Ids.DhtContact target, IReadOnlyList<DhtRecord> records, DateTimeOffset deadline, CancellationToken cancellationToken) =>
            Task.FromResult(DhtRpcResult<IReadOnlyList<StoreOutcome>>.Failed(CallOutcome.Unreachable, "no network in this test"));

        public Task<DhtRpcResult<IReadOnlyList<FindAnswer>>> FindAsync(DhtSender from, Ids.DhtContact target, IReadOnlyList<FindQuery> queries, DateTimeOffset deadline, CancellationToken cancellationToken) =>
            Task.FromResult(DhtRpcResult<IReadOnlyList<FindAnswer>>.Failed(CallOutcome.Unreachable, "no network in this test"));
    }
}
