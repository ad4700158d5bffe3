using System.Diagnostics;
using MoEMesh.Dht.Records;

namespace MoEMesh.Dht.Simulation;

/// <summary>
/// Do records outlive the nodes that held them? A simulated swarm of <see cref="Nodes"/> nodes; random
/// members store <see cref="Records"/> signed records that last <see cref="Lifetime"/>, once, and never
/// renew them. Then, over <see cref="ChurnSpan"/>, <see cref="ChurnShare"/> of the nodes leave one at a
/// time at even intervals (killed silently; writers may be among them), each replaced by a fresh node
/// with a new identity when <see cref="Replace"/>. At <see cref="ReadAt"/> after the stores, a random live
/// member reads every key back. Kademlia's answers to churn are store-on-join (a holder hands a newcomer
/// the records it is now nearest to) and the holders' republish (<see cref="DhtOptions.RepublishPeriod"/>),
/// which also covers nodes that leave with nobody joining; <see cref="Republish"/> switches it off to
/// show what it adds.
/// </summary>
public sealed record DurabilityScenario(
    int Nodes,
    int Records,
    double ChurnShare,
    bool Replace,
    TimeSpan ChurnSpan,
    TimeSpan ReadAt,
    TimeSpan Lifetime,
    bool Republish,
    int Seed)
{
    /// <summary>
    /// The scenario the reliability suite names: 30 % of the nodes replaced (or, without
    /// <paramref name="replace"/>, gone) over three refresh periods (30 min), records that live an hour
    /// (the longest a node accepts), read back after 50 min.
    /// </summary>
    public static DurabilityScenario Standard(int nodes, int records, bool replace, bool republish, int seed) =>
        new(nodes, records, 0.3, replace, TimeSpan.FromMinutes(30), TimeSpan.FromMinutes(50), TimeSpan.FromMinutes(59), republish, seed);

    /// <summary>Nodes start joining this far apart, overlapping.</summary>
    private static readonly TimeSpan JoinSpacing = TimeSpan.FromMilliseconds(20);

    /// <summary>Runs the scenario in virtual time on the calling thread.</summary>
    public DurabilityOutcome Run()
    {
        var wall = Stopwatch.StartNew();
        var clock = new SimulationClock();
        return SimulationRunner.Run(clock, async () =>
        {
            await using var swarm = new SimulatedSwarm(clock, SimulatedLinks.Default, Seed,
                () => new DhtOptions { RepublishPeriod = Republish ? new DhtOptions().RepublishPeriod : TimeSpan.Zero });
            await swarm.GrowAsync(Nodes, JoinSpacing);

            var storedAt = clock.GetUtcNow();
            var writes = await Task.WhenAll(Enumerable.Range(0, Records).Select(i => WriteAsync(swarm, $"durable:{i}", storedAt + Lifetime)));
            var written = writes.Where(w => w.Replicas > 0).ToArray();

            int leaving = (int)Math.Round(ChurnShare * Nodes);
            var gap = leaving > 0 ? ChurnSpan / leaving : ChurnSpan;
            for (int i = 0; i < leaving; i++)
            {
                await Task.Delay(gap, clock);
                await swarm.KillAsync(swarm.RandomAlive());
                if (Replace) await swarm.AddNodeAsync();
            }
            var wait = storedAt + ReadAt - clock.GetUtcNow();
            if (wait > TimeSpan.Zero) await Task.Delay(wait, clock);

            var reads = await Task.WhenAll(written.Select(async w =>
            {
                var value = await swarm.RandomAlive().Node.GetAsync(w.Key, latest: true, default);
                return value?[w.Subkey] is not null;
            }));
            double holders = written.Length == 0 ? 0 : written.Average(w => swarm.Alive.Count(m => m.Node.Holds(w.Key)));
            return new DurabilityOutcome(Records, written.Length, reads.Count(r => r), holders, leaving, swarm.Network.Rpcs, wall.Elapsed);
        });
    }

    private static async Task<(string Key, string Subkey, int Replicas)> WriteAsync(SimulatedSwarm swarm, string key, DateTimeOffset expiration)
    {
        var writer = swarm.RandomAlive();
        var subkey = writer.Identity.PeerId.ToString();
        var record = DhtRecord.Signed(key, subkey, BitConverter.GetBytes(writer.Index), expiration, writer.Identity);
        var result = await writer.Node.StoreAsync(record, default);
        return (key, subkey, result.Replicas);
    }
}

/// <summary>What a <see cref="DurabilityScenario"/> measured.</summary>
/// <param name="Records">Records the writers tried to store.</param>
/// <param name="Stored">Records stored on at least one node.</param>
/// <param name="Found">Stored records a GET found at the end.</param>
/// <param name="Holders">Live nodes holding a stored record at the end, on average (a store places 5).</param>
/// <param name="Left">Nodes that left (and were replaced, when the scenario replaces them).</param>
/// <param name="Rpcs">DHT RPCs over the whole run.</param>
/// <param name="Wall">Real time the simulation took.</param>
public sealed record DurabilityOutcome(int Records, int Stored, int Found, double Holders, int Left, long Rpcs, TimeSpan Wall)
{
    /// <summary>Share of the stored records found at the end.</summary>
    public double Survival => Stored == 0 ? 0 : (double)Found / Stored;
}
