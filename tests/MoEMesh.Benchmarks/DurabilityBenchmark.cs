using MoEMesh.Dht.Simulation;

namespace MoEMesh.Benchmarks;

/// <summary>
/// Whether DHT records outlive their holders: <see cref="DurabilityScenario.Standard"/> at each size,
/// with the holders' republish and without it, side by side.
/// </summary>
public static class DurabilityBenchmark
{
    public static int Run(int[] sizes, int records, int seed)
    {
        Console.WriteLine($"DHT durability: {records} signed records stored once (lifetime 59 min), never renewed by their writers;");
        Console.WriteLine("30 % of the nodes leave one at a time over 30 min (three refresh periods), each replaced by a fresh node or not; every record read back at 50 min.");
        Console.WriteLine();
        Console.WriteLine($"{"nodes",6} {"churn",8} {"republish",9} | {"stored",6} {"found",6} {"survival",8} {"holders",7} | {"left",5} {"rpcs",9} {"wall s",7}");
        foreach (int n in sizes)
            foreach (bool replace in new[] { true, false })
                foreach (bool republish in new[] { true, false })
                {
                    var o = DurabilityScenario.Standard(n, records, replace, republish, seed).Run();
                    Console.WriteLine($"{n,6} {(replace ? "replaced" : "gone"),8} {(republish ? "on" : "off"),9} | {o.Stored,6} {o.Found,6} {o.Survival,8:P1} {o.Holders,7:F2} | {o.Left,5} {o.Rpcs,9} {o.Wall.TotalSeconds,7:F1}");
                    if (n == 1000 && republish)
                        Goals.Report("durability", $"1,000 simulated nodes, 30 % {(replace ? "replaced" : "gone")}: records read back", $"{o.Survival:P1}", "every record stored", o.Survival, "100 %", o.Found == o.Stored);
                }
        Console.WriteLine();
        Console.WriteLine("holders: live nodes holding a record at the end, on average (a store places 5). rpcs: DHT RPCs over the whole run.");
        return 0;
    }
}
