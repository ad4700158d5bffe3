using MoEMesh.Dht.Ids;
using MoEMesh.Dht.Node;
using MoEMesh.Dht.Records;
using MoEMesh.Dht.Rpc;
using MoEMesh.Dht.Simulation;
using MoEMesh.Dht.Storage;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;

namespace MoEMesh.Dht.Tests;

/// <summary>Many nodes on the simulated network, in virtual time, seeded.</summary>
public class SwarmTests
{
    private static readonly TimeSpan Minutes5 = TimeSpan.FromMinutes(5);

    [Fact]
    public void Store_ReachesFiveReplicas_AndAGetFromAnotherNodeFindsIt()
    {
        Sim.Run(1, async swarm =>
        {
            await swarm.GrowAsync(50);
            var record = DhtRecord.Unsigned("model:demo", null, new byte[] { 1, 2, 3 }, swarm.In(Minutes5));
            var stored = await swarm.Members[7].Node.StoreAsync(record, default);
            Assert.Equal(5, stored.Replicas);
            Assert.Null(stored.Problem);
            var found = await swarm.Members[42].Node.GetAsync("model:demo", latest: false, default);
            Assert.Equal(new byte[] { 1, 2, 3 }, found!.Plain!.Value.ToArray());
            Assert.Null(await swarm.Members[42].Node.GetAsync("model:missing", latest: true, default));
        });
    }

    [Fact]
    public void FindNodes_ReturnsExactlyTheKNearestLiveNodes_CheckedByBruteForce()
    {
        Sim.Run(2, async swarm =>
        {
            await swarm.GrowAsync(200);
            var asker = swarm.Members[3].Node;
            var random = new Random(9);
            for (int q = 0; q < 20; q++)
            {
                var key = $"probe:{q}";
                var target = NodeId.ForKey(key);
                // A store finds the nearest nodes first: its replicas are the 5 nearest of all 200 (the asker included).
                var stored = await asker.StoreAsync(DhtRecord.Unsigned(key, null, new byte[] { 1 }, swarm.In(Minutes5)), default);
                Assert.Equal(5, stored.Replicas);
                var expected = swarm.Members.OrderBy(m => m.Node.Id.DistanceTo(target)).Take(5).Select(m => m.Index).Order().ToArray();
                var holders = swarm.Members.Where(m => m.Node.Holds(key)).Select(m => m.Index).Order().ToArray();
                Assert.Equal(expected, holders);
            }
        });
    }

    [Fact]
    public void SubkeysFromManyWriters_AreMergedByAGetWithLatest()
    {
        Sim.Run(3, async swarm =>
        {
            await swarm.GrowAsync(60);
            var writers = swarm.Members.Take(6).ToArray();
            await Task.WhenAll(writers.Select(w => w.Node.StoreAsync(
                DhtRecord.Signed("expert:ffn.1.2", w.Identity.PeerId.ToString(), BitConverter.GetBytes(w.Index), swarm.In(Minutes5), w.Identity), default)));
            var value = await swarm.Members[50].Node.GetAsync("expert:ffn.1.2", latest: true, default);
            Assert.NotNull(value);
            Assert.True(value.IsDictionary);
            Assert.Equal(writers.Select(w => w.Identity.PeerId.ToString()).Order(), value.Records.Select(r => r.Subkey!).Order());
        });
    }

    [Fact]
    public void UnsignedPlainValue_WithALaterExpiration_NeitherWipesNorHidesSignedHostEntries_AndRenewalsAreTaken()
    {
        Sim.Run(7, async swarm =>
        {
            await swarm.GrowAsync(60);
            var writers = swarm.Members.Take(4).ToArray();
            Task<DhtStoreResult[]> AnnounceAsync(TimeSpan lifetime) => Task.WhenAll(writers.Select(w => w.Node.StoreAsync(
                DhtRecord.Signed("expert:ffn.1.2", w.Identity.PeerId.ToString(), BitConverter.GetBytes(w.Index), swarm.In(lifetime), w.Identity), default)));
            await AnnounceAsync(TimeSpan.FromMinutes(1));
            // An attacker stores an unsigned plain value that would outlive the announcements by an hour.
            var attack = await swarm.Members[30].Node.StoreAsync(DhtRecord.Unsigned("expert:ffn.1.2", null, new byte[] { 6, 6, 6 }, swarm.In(TimeSpan.FromMinutes(59))), default);
            Assert.Equal(0, attack.Replicas);
            var value = await swarm.Members[50].Node.GetAsync("expert:ffn.1.2", latest: true, default);
            Assert.Equal(writers.Select(w => w.Identity.PeerId.ToString()).Order(), value!.Records.Select(r => r.Subkey!).Order());
            Assert.All(await AnnounceAsync(TimeSpan.FromMinutes(2)), stored => Assert.True(stored.Replicas > 0, stored.ToString()));
        });
    }

    [Fact]
    public void LaterExpiration_WinsAcrossTheNetwork()
    {
        Sim.Run(4, async swarm =>
        {
            await swarm.GrowAsync(40);
            var host = swarm.Members[5];
            var subkey = host.Identity.PeerId.ToString();
            var newer = DhtRecord.Signed("expert:x.0", subkey, new byte[] { 2 }, swarm.In(TimeSpan.FromMinutes(2)), host.Identity);
            var older = DhtRecord.Signed("expert:x.0", subkey, new byte[] { 1 }, swarm.In(TimeSpan.FromMinutes(1)), host.Identity);
            Assert.Equal(5, (await host.Node.StoreAsync(newer, default)).Replicas);
            var stale = await host.Node.StoreAsync(older, default);
            Assert.Equal(0, stale.Replicas);
            Assert.Contains("Outdated", stale.Problem);
            var value = await swarm.Members[30].Node.GetAsync("expert:x.0", latest: true, default);
            Assert.Equal(2, value![subkey]!.Value.Span[0]);
        });
    }

    [Fact]
    public void ForgedRecord_IsRejectedOnStore_AndIgnoredOnFind()
    {
        Sim.Run(5, async swarm =>
        {
            await swarm.GrowAsync(30);
            var victim = swarm.Members[1];
            var attacker = swarm.Members[2];
            var forged = DhtRecord.Signed("expert:ffn.0", victim.Identity.PeerId.ToString(), new byte[] { 66 }, swarm.In(Minutes5), attacker.Identity);
            var stored = await attacker.Node.StoreAsync(forged, default);
            Assert.Equal(0, stored.Replicas);
            Assert.Contains("names owner", stored.Problem);

            // A liar answers finds with the forged record; the asker ignores it.
            var liar = await swarm.AddNodeAsync();
            var liarAddress = new PeerAddress("liar", 7000);
            swarm.Network.Attach(liar.Identity.PeerId, liarAddress, new LyingHandler(liar.Node, forged));
            var asker = await swarm.AddNodeAsync();
            asker.Node.HandlePing(new DhtSender(liar.Identity.PeerId, liarAddress, false));
            var value = await asker.Node.GetAsync("expert:ffn.0", latest: true, default);
            Assert.Null(value);
        });
    }

    private sealed class LyingHandler(IDhtRpcHandler inner, DhtRecord lie) : IDhtRpcHandler
    {
        public PeerId HandlePing(DhtSender from) => inner.HandlePing(from);

        public IReadOnlyList<StoreOutcome> HandleStore(DhtSender from, IReadOnlyList<DhtRecord> records) => inner.HandleStore(from, records);

        public IReadOnlyList<FindAnswer> HandleFind(DhtSender from, IReadOnlyList<FindQuery> queries) =>
            inner.HandleFind(from, queries).Select((a, i) => queries[i].Key == lie.Key ? a with { Records = [lie] } : a).ToArray();
    }

    [Fact]
    public void ClientMode_GetsAndStores_ButNeverEntersARoutingTable()
    {
        Sim.Run(6, async swarm =>
        {
            await swarm.GrowAsync(30);
            var client = await swarm.AddNodeAsync(clientMode: true);
            var stored = await client.Node.StoreAsync(DhtRecord.Unsigned("k:client", null, new byte[] { 7 }, swarm.In(Minutes5)), default);
            Assert.Equal(5, stored.Replicas);
            Assert.NotNull(await client.Node.GetAsync("k:client", latest: true, default));
            Assert.Equal(0, client.Node.StoredRecords);
            Assert.DoesNotContain(swarm.Members.Where(m => m != client), m => m.Node.Contacts.Any(c => c.PeerId == client.Identity.PeerId));
        });
    }

    [Fact]
    public void NewNodeNearAKey_ReceivesItsRecord_StoreOnJoin()
    {
        Sim.Run(7, async swarm =>
        {
            await swarm.GrowAsync(25);
            var key = "k:join";
            var keyId = NodeId.ForKey(key);
            await swarm.Members[0].Node.StoreAsync(DhtRecord.Unsigned(key, null, new byte[] { 5 }, swarm.In(Minutes5)), default);
            // Add nodes until one lands nearer to the key than every earlier node; it must receive the record.
            SwarmMember? nearest = null;
            while (nearest is null)
            {
                var added = await swarm.AddNodeAsync();
                if (swarm.Members.Where(m => m != added).All(m => added.Node.Id.IsCloserTo(keyId, m.Node.Id))) nearest = added;
            }
            await Task.Delay(TimeSpan.FromSeconds(5), swarm.Clock);
            Assert.True(nearest.Node.Holds(key), "the nearest newcomer did not receive the record");
        });
    }

    [Fact]
    public void FloodOfNewContacts_CostsOnePassOverTheStoredKeys_NotOnePerContact()
    {
        Sim.Run(8, async swarm =>
        {
            await swarm.GrowAsync(10);
            var node = swarm.Members[3].Node;
            for (int i = 0; i < 200; i++)
                node.HandleStore(new DhtSender(swarm.Members[4].Identity.PeerId, null, true), [DhtRecord.Unsigned($"k:{i}", null, new byte[] { 1 }, swarm.In(Minutes5))]);
            int before = node.HandOffPasses;
            var random = new Random(8);
            for (int i = 0; i < 100; i++)
            {
                var stranger = TestContacts.Random(random);
                node.HandlePing(new DhtSender(stranger.PeerId, new PeerAddress($"stranger-{i}", 7000), ClientMode: false));
            }
            await Task.Delay(TimeSpan.FromSeconds(5), swarm.Clock);
            Assert.True(node.RoutingTableSize > 20, $"only {node.RoutingTableSize} contacts: the strangers were not taken in");
            Assert.Equal(1, node.HandOffPasses - before);
        });
    }

    [Fact]
    public void Bootstrap_NoInitialPeerAnswers_NamesEachPeerAndWhy()
    {
        var e = Assert.Throws<DhtBootstrapException>(() => Sim.Run(8, async swarm =>
        {
            await swarm.GrowAsync(1);
            swarm.Network.Kill(swarm.Members[0].Address);
            using var identity = PeerIdentity.FromSeed(999);
            await using var node = new DhtNode(identity.PeerId, new PeerAddress("lonely", 7000), swarm.Network, new DhtOptions(), swarm.Clock);
            await node.BootstrapAsync([new PeerEndpoint(swarm.Members[0].Address), new PeerEndpoint(new PeerAddress("nobody", 7000))], default);
        }));
        Assert.Contains("none of the 2 initial peers answered after 4 attempts", e.Message);
        Assert.Contains("node-0:7000: Timeout", e.Message);
        Assert.Contains("nobody:7000: Unreachable: nothing listens at nobody:7000", e.Message);
    }

    [Fact]
    public void Bootstrap_RetriesWithBackoff_AndJoinsWhenAPeerComesUp()
    {
        Sim.Run(9, async swarm =>
        {
            await swarm.GrowAsync(5);
            var first = swarm.Members[0];
            await swarm.KillAsync(first);
            using var identity = PeerIdentity.FromSeed(998);
            await using var node = new DhtNode(identity.PeerId, new PeerAddress("late", 7000), swarm.Network, new DhtOptions(), swarm.Clock);
            swarm.Network.Attach(identity.PeerId, new PeerAddress("late", 7000), node);
            var started = swarm.Clock.Elapsed;
            var joining = node.BootstrapAsync([new PeerEndpoint(first.Address)], default);
            // Attempts at 0 s (3 s timeout), then after 1 s and 2 s back-off: bring the peer back during the waits.
            await Task.Delay(TimeSpan.FromSeconds(5), swarm.Clock);
            await swarm.RestartAsync(first);
            await joining;
            Assert.True(swarm.Clock.Elapsed - started > TimeSpan.FromSeconds(6));
            Assert.True(node.RoutingTableSize > 0);
        });
    }

    [Fact]
    public void EmptiedTable_GoesBackToTheInitialPeersByItself()
    {
        Sim.Run(10, async swarm =>
        {
            await swarm.GrowAsync(3);
            using var identity = PeerIdentity.FromSeed(997);
            var address = new PeerAddress("loner", 7000);
            await using var loner = new DhtNode(identity.PeerId, address, swarm.Network, new DhtOptions(), swarm.Clock);
            swarm.Network.Attach(identity.PeerId, address, loner);
            var initial = swarm.Members[0];
            await loner.BootstrapAsync([new PeerEndpoint(initial.Address)], default);
            loner.Start();
            Assert.Equal(3, loner.RoutingTableSize);

            foreach (var m in swarm.Members.ToArray()) await swarm.KillAsync(m);
            // A lookup asks the dead contacts; once their RPCs time out, they are gone from the table.
            await loner.GetAsync("anything", latest: true, default);
            await Task.Delay(loner.Options.RpcTimeout, swarm.Clock);
            Assert.Equal(0, loner.RoutingTableSize);

            await swarm.RestartAsync(initial);
            await Task.Delay(TimeSpan.FromSeconds(20), swarm.Clock);
            Assert.Contains(loner.Contacts, c => c.PeerId == initial.Identity.PeerId);
        });
    }

    [Fact]
    public void Churn_ThirtyPercentKilledMidRun_GetsStillAnswer()
    {
        var (ok, total) = Sim.Run(11, async swarm =>
        {
            await swarm.GrowAsync(150);
            var keys = Enumerable.Range(0, 30).Select(i => $"churn:{i}").ToArray();
            foreach (var key in keys)
                await swarm.RandomAlive().Node.StoreAsync(DhtRecord.Unsigned(key, null, new byte[] { 1 }, swarm.In(TimeSpan.FromMinutes(30))), default);
            var victims = Enumerable.Range(0, 45).Select(_ => swarm.RandomAlive()).Distinct().ToArray();
            var gets = keys.Select(async (key, i) =>
            {
                await Task.Delay(TimeSpan.FromSeconds(i), swarm.Clock);
                var reader = swarm.RandomAlive(m => victims.Contains(m));
                return await reader.Node.GetAsync(key, latest: true, default) is not null;
            }).ToArray();
            foreach (var (victim, i) in victims.Select((v, i) => (v, i)))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(600), swarm.Clock);
                await swarm.KillAsync(victim);
            }
            var answers = await Task.WhenAll(gets);
            return (answers.Count(a => a), answers.Length);
        });
        Assert.True(ok >= total - 1, $"{ok} of {total} gets answered while 30 % of the nodes were killed");
    }

    [Fact]
    public void ConcurrentGetsOfOneKey_ShareOneSearch()
    {
        var (shared, single) = Sim.Run(12, async swarm =>
        {
            await swarm.GrowAsync(80);
            await swarm.Members[0].Node.StoreAsync(DhtRecord.Unsigned("k:shared", null, new byte[] { 1 }, swarm.In(Minutes5)), default);
            var reader = swarm.Members[70].Node;
            long before = swarm.Network.Rpcs;
            await reader.GetAsync("k:other", latest: true, default);
            long one = swarm.Network.Rpcs - before;
            before = swarm.Network.Rpcs;
            var many = Enumerable.Range(0, 5).Select(_ => reader.GetAsync("k:another", latest: true, default)).ToArray();
            await Task.WhenAll(many);
            return (swarm.Network.Rpcs - before, one);
        });
        Assert.InRange(shared, 1, single * 2);
    }

    [Fact]
    public void SameSeed_RepeatsExactly_DifferentSeedDoesNot()
    {
        long Rpcs(int seed) => Sim.Run(seed, async swarm =>
        {
            await swarm.GrowAsync(60);
            await swarm.Members[1].Node.StoreAsync(DhtRecord.Unsigned("k", null, new byte[] { 1 }, swarm.In(Minutes5)), default);
            await swarm.Members[50].Node.GetAsync("k", latest: true, default);
            return swarm.Network.Rpcs * 1_000_000_000L + swarm.Clock.Elapsed.Ticks % 1_000_000_000L;
        });
        Assert.Equal(Rpcs(13), Rpcs(13));
        Assert.NotEqual(Rpcs(13), Rpcs(14));
    }

    [Fact]
    public void FailedPeer_IsBanned_ThenSkippedByLookups()
    {
        Sim.Run(15, async swarm =>
        {
            // Fewer nodes than k: every contact is in every lookup's window, so the dead one is asked.
            await swarm.GrowAsync(15);
            var asker = swarm.Members[10];
            var dead = asker.Node.Contacts.First();
            var victim = swarm.Members.Single(m => m.Identity.PeerId == dead.PeerId);
            await swarm.KillAsync(victim);
            // A lookup asks the dead peer (it is in the asker's table); when that RPC times out the peer is
            // banned for 5 s and dropped from the table. The lookup itself does not wait for it.
            var started = swarm.Clock.Elapsed;
            await asker.Node.GetAsync(dead.Id.ToString(), latest: true, default);
            Assert.True(swarm.Clock.Elapsed - started < asker.Node.Options.RpcTimeout, "the lookup waited out the dead peer's timeout");
            await Task.Delay(asker.Node.Options.RpcTimeout, swarm.Clock);
            Assert.DoesNotContain(asker.Node.Contacts, c => c.PeerId == dead.PeerId);
            var host = (Lookup.ILookupHost)asker.Node;
            Assert.True(host.IsBanned(dead.Id));
            await Task.Delay(TimeSpan.FromSeconds(5), swarm.Clock);
            Assert.False(host.IsBanned(dead.Id));
        });
    }
}
