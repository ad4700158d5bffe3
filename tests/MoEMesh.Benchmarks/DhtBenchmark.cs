using System.Diagnostics;
using System.Diagnostics.Metrics;
using MoEMesh.Dht;
using MoEMesh.Dht.Records;
using MoEMesh.Dht.Simulation;

namespace MoEMesh.Benchmarks;

/// <summary>
/// Hivemind's benchmark_dht, with failures: a simulated swarm of N nodes (50 ms median one-way latency,
/// log-normal), rounds in which random nodes store signed subkeys under fresh keys and other nodes GET
/// them with <c>latest</c>, while a share of the nodes is killed at random times through the run. A GET
/// counts only if it returns every subkey that was stored. Operations whose own node was killed while
/// they ran are left out (the service did not fail them; their caller died).
/// </summary>
public static class DhtBenchmark
{
    /// <summary>Nodes start joining this far apart, overlapping (about 50 join at once).</summary>
    private static readonly TimeSpan JoinSpacing = TimeSpan.FromMilliseconds(20);

    /// <summary>Parameters of one run.</summary>
    public sealed record Scenario(int Nodes, double KillShare, int Rounds, int KeysPerRound, int SubkeysPerKey, int Seed);

    public static int Run(int[] sizes, double[] killShares, int rounds, int keysPerRound, int seed)
    {
        Console.WriteLine($"DHT swarm benchmark: {rounds} rounds x {keysPerRound} fresh keys x 3 subkeys; GET with latest by other nodes; k = 20, alpha = 3, 5 replicas");
        Console.WriteLine("links: one-way latency log-normal, median 50 ms; killed nodes go silent (a request to one turns slow after 500 ms, times out at 3 s)");
        Console.WriteLine();
        Console.WriteLine($"{"nodes",6} {"killed",6} | {"join s",7} | {"store ok",8} {"replicas",8} | {"get ok",7} {"rounds p50",10} {"p99",4} {"rpcs p50",8} {"p99",4} {"get ms p50",10} {"p99",6} | {"excluded",8} {"wall s",7}");
        var results = new List<(Scenario Scenario, Outcome Outcome)>();
        foreach (int n in sizes)
            foreach (double kill in killShares)
            {
                var scenario = new Scenario(n, kill, rounds, keysPerRound, 3, seed);
                var outcome = RunScenario(scenario);
                results.Add((scenario, outcome));
                Console.WriteLine($"{n,6} {kill,6:P0} | {outcome.JoinSeconds,7:F1} | {outcome.StoreSuccess,8:P1} {outcome.MeanReplicas,8:F2} | {outcome.GetSuccess,7:P1} "
                    + $"{outcome.Rounds.Median,10} {outcome.Rounds.P99,4} {outcome.Rpcs.Median,8} {outcome.Rpcs.P99,4} {outcome.GetLatency.Median,10:F0} {outcome.GetLatency.P99,6:F0} | {outcome.Excluded,8} {outcome.WallSeconds,7:F1}");
            }
        Console.WriteLine();
        Console.WriteLine($"join s: simulated seconds until every node has joined, one starting every {JoinSpacing.TotalMilliseconds:F0} ms. get ms: simulated time per GET.");
        ReportGoals(results);
        return 0;
    }

    private static void ReportGoals(List<(Scenario Scenario, Outcome Outcome)> results)
    {
        var at1000 = results.Where(r => r.Scenario.Nodes == 1000).ToArray();
        if (at1000.Length == 0) return;
        var clean = at1000.FirstOrDefault(r => r.Scenario.KillShare == 0);
        var ten = at1000.FirstOrDefault(r => Math.Abs(r.Scenario.KillShare - 0.1) < 1e-9);
        var thirty = at1000.FirstOrDefault(r => Math.Abs(r.Scenario.KillShare - 0.3) < 1e-9);
        if (clean.Outcome is not null)
            Goals.Report("dht", "1,000 simulated nodes: median lookup rounds", $"{clean.Outcome.Rounds.Median}", "-", null, "<= 4", clean.Outcome.Rounds.Median <= 4);
        if (ten.Outcome is not null)
            Goals.Report("dht", "1,000 simulated nodes, 10 % killed: GET success", $"{ten.Outcome.GetSuccess:P1}", "every value stored", ten.Outcome.GetSuccess, ">= 99 %", ten.Outcome.GetSuccess >= 0.99);
        if (thirty.Outcome is not null)
            Goals.Report("dht", "1,000 simulated nodes, 30 % killed: GET success", $"{thirty.Outcome.GetSuccess:P1}", "every value stored", thirty.Outcome.GetSuccess, ">= 95 %", thirty.Outcome.GetSuccess >= 0.95);
    }

    /// <summary>Runs one scenario in virtual time.</summary>
    public static Outcome RunScenario(Scenario s)
    {
        var wall = Stopwatch.StartNew();
        var clock = new SimulationClock();
        var rounds = new List<int>();
        var rpcs = new List<int>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "MoEMesh.Dht" && instrument.Name is "moemesh.dht.lookup.rounds" or "moemesh.dht.lookup.rpcs") l.EnableMeasurementEvents(instrument);
        };
        bool measuring = false;
        listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) =>
        {
            if (!measuring || !IsGet(tags)) return;
            (instrument.Name == "moemesh.dht.lookup.rounds" ? rounds : rpcs).Add(value);
        });
        listener.Start();
        return SimulationRunner.Run(clock, async () =>
        {
            await using var swarm = new SimulatedSwarm(clock, SimulatedLinks.Default, s.Seed);
            var joinStart = clock.Elapsed;
            await swarm.GrowAsync(s.Nodes, JoinSpacing);
            double joinSeconds = (clock.Elapsed - joinStart).TotalSeconds;

            var roundLength = TimeSpan.FromSeconds(20);
            var killer = KillAtRandomTimesAsync(swarm, (int)Math.Round(s.KillShare * s.Nodes), roundLength * s.Rounds);
            measuring = true;
            var tally = new Tally();
            for (int round = 0; round < s.Rounds; round++)
            {
                var roundStart = clock.GetUtcNow();
                await RoundAsync(swarm, s, round, tally);
                var wait = roundStart + roundLength - clock.GetUtcNow();
                if (wait > TimeSpan.Zero) await Task.Delay(wait, clock);
            }
            measuring = false;
            await killer;
            return new Outcome(joinSeconds, tally.StoreSuccess, tally.MeanReplicas, tally.GetSuccess, Stats.Of(rounds), Stats.Of(rpcs),
                Stats.Of(tally.GetMilliseconds), tally.Excluded, wall.Elapsed.TotalSeconds);
        });
    }

    private static bool IsGet(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        foreach (var t in tags)
            if (t.Key == "operation" && (string?)t.Value == "get") return true;
        return false;
    }

    private static async Task KillAtRandomTimesAsync(SimulatedSwarm swarm, int victims, TimeSpan span)
    {
        var times = Enumerable.Range(0, victims).Select(_ => TimeSpan.FromTicks((long)(swarm.Next(1_000_000) / 1e6 * span.Ticks))).Order().ToArray();
        var start = swarm.Clock.Elapsed;
        foreach (var at in times)
        {
            var wait = start + at - swarm.Clock.Elapsed;
            if (wait > TimeSpan.Zero) await Task.Delay(wait, swarm.Clock);
            await swarm.KillAsync(swarm.RandomAlive());
        }
    }

    /// <summary>Stores SubkeysPerKey signed subkeys under each fresh key (from different nodes), then GETs each from another node.</summary>
    private static async Task RoundAsync(SimulatedSwarm swarm, Scenario s, int round, Tally tally)
    {
        var clock = swarm.Clock;
        var expiration = clock.GetUtcNow() + TimeSpan.FromMinutes(30);
        var keys = Enumerable.Range(0, s.KeysPerRound).Select(i => $"bench:{round}:{i}").ToArray();
        var stores = new List<Task<(string Key, string Subkey, bool Counted, bool Stored, int Replicas)>>();
        foreach (var key in keys)
        {
            var writers = new HashSet<SwarmMember>();
            while (writers.Count < s.SubkeysPerKey) writers.Add(swarm.RandomAlive());
            foreach (var writer in writers) stores.Add(StoreOneAsync(writer, key, expiration));
        }
        var stored = await Task.WhenAll(stores);
        foreach (var r in stored.Where(r => r.Counted)) tally.Store(r.Stored, r.Replicas);
        foreach (var r in stored.Where(r => !r.Counted)) tally.Excluded++;

        var gets = keys.Select(async key =>
        {
            var expected = stored.Where(r => r.Key == key && r.Stored).Select(r => r.Subkey).ToHashSet();
            var reader = swarm.RandomAlive();
            var start = clock.GetUtcNow();
            try
            {
                var value = await reader.Node.GetAsync(key, latest: true, default);
                if (!reader.IsAlive) return (Counted: false, Ok: false, Ms: 0.0);
                bool ok = value is not null && expected.All(sub => value[sub] is not null);
                return (Counted: true, Ok: ok, Ms: (clock.GetUtcNow() - start).TotalMilliseconds);
            }
            catch (OperationCanceledException) when (!reader.IsAlive)
            {
                return (Counted: false, Ok: false, Ms: 0.0);
            }
        });
        foreach (var g in await Task.WhenAll(gets))
        {
            if (!g.Counted) tally.Excluded++;
            else tally.Get(g.Ok, g.Ms);
        }
    }

    private static async Task<(string Key, string Subkey, bool Counted, bool Stored, int Replicas)> StoreOneAsync(SwarmMember writer, string key, DateTimeOffset expiration)
    {
        var subkey = writer.Identity.PeerId.ToString();
        var record = DhtRecord.Signed(key, subkey, BitConverter.GetBytes(writer.Index), expiration, writer.Identity);
        try
        {
            var result = await writer.Node.StoreAsync(record, default);
            return (key, subkey, writer.IsAlive, result.Succeeded, result.Replicas);
        }
        catch (OperationCanceledException) when (!writer.IsAlive)
        {
            return (key, subkey, false, false, 0);
        }
    }

    /// <summary>What one scenario measured.</summary>
    public sealed record Outcome(double JoinSeconds, double StoreSuccess, double MeanReplicas, double GetSuccess, Stats Rounds, Stats Rpcs, Stats GetLatency, int Excluded, double WallSeconds);

    /// <summary>Median and 99th percentile.</summary>
    public sealed record Stats(double Median, double P99)
    {
        public static Stats Of(IReadOnlyCollection<int> values) => Of(values.Select(v => (double)v).ToList());

        public static Stats Of(List<double> values)
        {
            if (values.Count == 0) return new Stats(double.NaN, double.NaN);
            var sorted = values.Order().ToArray();
            return new Stats(sorted[sorted.Length / 2], sorted[Math.Min(sorted.Length - 1, (int)(0.99 * sorted.Length))]);
        }
    }

    private sealed class Tally
    {
        private int _stores, _storesOk, _replicas, _gets, _getsOk;

        public List<double> GetMilliseconds { get; } = [];

        public int Excluded { get; set; }

        public double StoreSuccess => _stores == 0 ? double.NaN : (double)_storesOk / _stores;

        public double MeanReplicas => _stores == 0 ? double.NaN : (double)_replicas / _stores;

        public double GetSuccess => _gets == 0 ? double.NaN : (double)_getsOk / _gets;

        public void Store(bool ok, int replicas)
        {
            _stores++;
            if (ok) _storesOk++;
            _replicas += replicas;
        }

        public void Get(bool ok, double ms)
        {
            _gets++;
            if (ok) _getsOk++;
            GetMilliseconds.Add(ms);
        }
    }
}
