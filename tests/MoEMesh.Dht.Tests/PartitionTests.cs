using MoEMesh.Dht.Records;
using MoEMesh.Dht.Simulation;

namespace MoEMesh.Dht.Tests;

/// <summary>
/// The network splits in two and heals, and a node loses every peer and finds them again (simulated swarms,
/// virtual time). Hosts announce as a node's announcer does: every UpdatePeriod, records that last two.
/// </summary>
public class PartitionTests
{
    private static readonly TimeSpan UpdatePeriod = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(4)]
    [InlineData(40)] // longer than RefreshPeriod: lost contacts are kept for LostContactRetention (1 h)
    public void AfterAPartitionHeals_EveryNodeFindsEveryHost_WithinTwoUpdatePeriods(int splitMinutes)
    {
        Sim.Run(31, async swarm =>
        {
            await swarm.GrowAsync(40);
            using var stop = new CancellationTokenSource();
            var announcing = swarm.Members.Select(m => AnnounceAsync(swarm, m, stop.Token)).ToArray();
            var keys = swarm.Members.Select(Key).ToArray();
            var sideA = swarm.Members.Where(m => m.Index % 2 == 0).ToArray();
            var sideB = swarm.Members.Where(m => m.Index % 2 == 1).ToArray();
            await Task.Delay(2 * UpdatePeriod, swarm.Clock);

            swarm.Network.Partition(sideA.Select(m => m.Address), sideB.Select(m => m.Address));
            await Task.Delay(TimeSpan.FromMinutes(splitMinutes), swarm.Clock);
            // Split, each side sees its own hosts and none of the other's (their records have expired).
            var splitView = await sideA[0].Node.GetManyAsync(keys, latest: true, default);
            Assert.All(sideA, m => Assert.NotNull(splitView[Key(m)]));
            Assert.All(sideB, m => Assert.Null(splitView[Key(m)]));

            swarm.Network.Heal();
            await Task.Delay(2 * UpdatePeriod, swarm.Clock);
            foreach (var member in swarm.Members)
            {
                var view = await member.Node.GetManyAsync(keys, latest: true, default);
                var missing = keys.Where(k => view[k] is null).ToArray();
                Assert.True(missing.Length == 0, $"node {member.Index} finds no host of {string.Join(", ", missing)}");
            }
            stop.Cancel();
            await Task.WhenAll(announcing);
        });
    }

    [Fact]
    public void ANodeThatLostEveryPeer_FindsThemAgainByItself_AndItsAnnouncementsReachThem()
    {
        Sim.Run(32, async swarm =>
        {
            await swarm.GrowAsync(20);
            using var stop = new CancellationTokenSource();
            var announcing = swarm.Members.Select(m => AnnounceAsync(swarm, m, stop.Token)).ToArray();
            // Node 0 started the swarm: it has no initial peers to go back to.
            var alone = swarm.Members[0];
            await Task.Delay(2 * UpdatePeriod, swarm.Clock);

            swarm.Network.Partition([alone.Address], swarm.Members.Skip(1).Select(m => m.Address));
            await Task.Delay(TimeSpan.FromMinutes(3), swarm.Clock);
            Assert.Equal(0, alone.Node.RoutingTableSize);
            Assert.Null(await swarm.Members[5].Node.GetAsync(Key(alone), latest: true, default));

            swarm.Network.Heal();
            await Task.Delay(2 * UpdatePeriod, swarm.Clock);
            Assert.True(alone.Node.RoutingTableSize > 5, $"the node knows {alone.Node.RoutingTableSize} contacts");
            Assert.NotNull(await swarm.Members[5].Node.GetAsync(Key(alone), latest: true, default));
            Assert.NotNull(await alone.Node.GetAsync(Key(swarm.Members[7]), latest: true, default));
            stop.Cancel();
            await Task.WhenAll(announcing);
        });
    }

    private static string Key(SwarmMember member) => $"expert:part.{member.Index}";

    /// <summary>What a node's announcer does: every UpdatePeriod, a record of its own that lasts two periods.</summary>
    private static async Task AnnounceAsync(SimulatedSwarm swarm, SwarmMember member, CancellationToken stop)
    {
        try
        {
            while (true)
            {
                var record = DhtRecord.Signed(Key(member), member.Identity.PeerId.ToString(), new byte[] { 1 }, swarm.In(2 * UpdatePeriod), member.Identity);
                await member.Node.StoreAsync(record, stop);
                await Task.Delay(UpdatePeriod, swarm.Clock, stop);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }
}
