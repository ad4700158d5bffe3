using MoEMesh.Dht.Ids;
using MoEMesh.Dht.Records;
using MoEMesh.Dht.Rpc;
using MoEMesh.Dht.Storage;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Dht.Tests;

/// <summary>Peers that answer finds with made-up contacts, in a simulated swarm.</summary>
public class EclipseTests
{
    [Fact]
    public void MadeUpContacts_NearerThanEveryRealNode_NeitherHideValuesNorStallLookups()
    {
        var (found, total, longest, timeout) = Sim.Run(21, async swarm =>
        {
            await swarm.GrowAsync(150);
            var keys = Enumerable.Range(0, 30).Select(i => $"eclipse:{i}").ToArray();
            foreach (var key in keys)
                await swarm.RandomAlive().Node.StoreAsync(DhtRecord.Unsigned(key, null, new byte[] { 1 }, swarm.In(TimeSpan.FromMinutes(30))), default);
            // Addresses that swallow every call (their nodes are gone), for the made-up contacts to point at.
            var dead = Enumerable.Range(0, 10).Select(_ => swarm.RandomAlive()).Distinct().ToArray();
            foreach (var member in dead) await swarm.KillAsync(member);
            var silent = dead.Select(m => m.Address).ToArray();
            // A fifth of the live nodes answer every find with k contacts nearer the target than any real node.
            var liars = Enumerable.Range(0, 30).Select(_ => swarm.RandomAlive()).Distinct().ToArray();
            foreach (var liar in liars)
            {
                swarm.Network.Kill(liar.Address);
                swarm.Network.Attach(liar.Identity.PeerId, liar.Address, new Eclipser(liar.Node, silent, liar.Node.Options.BucketSize, new Random(liar.Index)));
            }
            var longest = TimeSpan.Zero;
            int found = 0;
            foreach (var key in keys)
            {
                var reader = swarm.RandomAlive(m => liars.Contains(m));
                var started = swarm.Clock.Elapsed;
                if (await reader.Node.GetAsync(key, latest: true, default) is not null) found++;
                longest = TimeSpan.FromTicks(Math.Max(longest.Ticks, (swarm.Clock.Elapsed - started).Ticks));
            }
            return (found, keys.Length, longest, swarm.Members[0].Node.Options.OperationTimeout);
        });
        Assert.Equal(total, found);
        // Unchecked, each liar's made-up contacts would keep a lookup busy until its deadline.
        Assert.True(longest < timeout, $"the slowest get took {longest.TotalSeconds:F1} s of virtual time: it ran into the {timeout.TotalSeconds:F0} s limit");
    }

    /// <summary>Answers pings and stores honestly, every find with k made-up contacts next to the target and no records.</summary>
    private sealed class Eclipser(IDhtRpcHandler inner, IReadOnlyList<PeerAddress> silent, int k, Random random) : IDhtRpcHandler
    {
        public PeerId HandlePing(DhtSender from) => inner.HandlePing(from);

        public IReadOnlyList<StoreOutcome> HandleStore(DhtSender from, IReadOnlyList<DhtRecord> records) => inner.HandleStore(from, records);

        public IReadOnlyList<FindAnswer> HandleFind(DhtSender from, IReadOnlyList<FindQuery> queries) =>
            queries.Select(q => new FindAnswer(Enumerable.Range(0, k).Select(_ => Fake(q.Target)).ToArray(), [])).ToArray();

        private DhtContact Fake(NodeId target)
        {
            // The target's own bytes with only the last few changed: nearer than any real node can be.
            var id = target.ToBytes();
            id[^1] = (byte)random.Next(256);
            id[^2] = (byte)random.Next(256);
            return new DhtContact(PeerId.FromHash(id), silent[random.Next(silent.Count)]);
        }
    }
}
