using MoEMesh.Dht.Records;
using MoEMesh.Dht.Simulation;

namespace MoEMesh.Dht.Tests;

/// <summary>Records outlive the nodes that held them (simulated swarms, virtual time, seeded).</summary>
public class DurabilityTests
{
    [Fact]
    public void RecordsStoredOnce_SurviveAThirdOfTheSwarmReplaced()
    {
        var outcome = DurabilityScenario.Standard(nodes: 150, records: 60, replace: true, republish: true, seed: 11).Run();
        Assert.Equal(60, outcome.Stored);
        Assert.Equal(45, outcome.Left);
        Assert.Equal(outcome.Stored, outcome.Found);
    }

    [Fact]
    public void WhenHalfTheSwarmLeaves_WithNobodyJoining_RepublishKeepsEveryRecord_AndWithoutItSomeAreLost()
    {
        // With nobody joining, store-on-join has nobody to hand records to: only republish moves them on.
        // Half gone makes losses without it near certain (1 in 32 records loses all five holders).
        var scenario = DurabilityScenario.Standard(nodes: 150, records: 60, replace: false, republish: true, seed: 11) with { ChurnShare = 0.5 };
        var with = scenario.Run();
        var without = (scenario with { Republish = false }).Run();
        Assert.Equal(with.Stored, with.Found);
        Assert.True(with.Holders > without.Holders, $"holders at the end: {with.Holders:F2} with republish, {without.Holders:F2} without");
        Assert.True(without.Found < without.Stored, $"without republish, found {without.Found} of {without.Stored}");
    }

    [Fact]
    public void AfterThreeOfFiveHoldersDie_TheOthersRepublish_ToTheFiveNodesNowNearest()
    {
        Sim.Run(21, async swarm =>
        {
            await swarm.GrowAsync(40);
            var writer = swarm.Members[3];
            var record = DhtRecord.Signed("durable:one", writer.Identity.PeerId.ToString(), new byte[] { 7 }, swarm.In(TimeSpan.FromMinutes(59)), writer.Identity);
            Assert.Equal(5, (await writer.Node.StoreAsync(record, default)).Replicas);
            var holders = swarm.Members.Where(m => m.Node.Holds("durable:one")).ToArray();
            Assert.Equal(5, holders.Length);
            foreach (var holder in holders.Where(h => h != writer).Take(3)) await swarm.KillAsync(holder);
            Assert.Equal(2, swarm.Alive.Count(m => m.Node.Holds("durable:one")));

            // A holder republishes at its first tick (every 9 to 11 min) that finds the key unrenewed for a
            // whole period: by 22 min after the store.
            await Task.Delay(TimeSpan.FromMinutes(22), swarm.Clock);

            var key = Ids.NodeId.ForKey("durable:one");
            var nearest = swarm.Alive.OrderBy(m => m.Node.Id.DistanceTo(key)).Take(5).Select(m => m.Index).Order();
            Assert.Equal(nearest, swarm.Alive.Where(m => m.Node.Holds("durable:one")).Select(m => m.Index).Order());
        });
    }
}
