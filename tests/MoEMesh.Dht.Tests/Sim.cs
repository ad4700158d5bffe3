using MoEMesh.Dht.Simulation;

namespace MoEMesh.Dht.Tests;

/// <summary>Runs a test body against a fresh seeded swarm in virtual time.</summary>
internal static class Sim
{
    public static T Run<T>(int seed, Func<SimulatedSwarm, Task<T>> body, SimulatedLinks? links = null, Func<DhtOptions>? options = null)
    {
        var clock = new SimulationClock();
        return SimulationRunner.Run(clock, async () =>
        {
            await using var swarm = new SimulatedSwarm(clock, links, seed, options);
            return await body(swarm);
        });
    }

    public static void Run(int seed, Func<SimulatedSwarm, Task> body, SimulatedLinks? links = null, Func<DhtOptions>? options = null) =>
        Run(seed, async swarm =>
        {
            await body(swarm);
            return true;
        }, links, options);

    public static DateTimeOffset In(this SimulatedSwarm swarm, TimeSpan span) => swarm.Clock.GetUtcNow() + span;
}
