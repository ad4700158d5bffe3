using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Experts;
using MoEMesh.Node.Hosting;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Routing;
using MoEMesh.Routing.Calling;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Gating;
using MoEMesh.Routing.Invocation;
using MoEMesh.Tensors;
using MoEMesh.Tensors.Gemm;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Benchmarks;

/// <summary>
/// The MoE layer over the network against the same layer in one process: 4 nodes in this process (real
/// TCP on loopback, TLS off) host 16 ffn experts on a 4 × 4 grid; a fifth node gates, k = 2. Throughput of
/// forward and of forward + backward (experts step their optimizers on their hosts in both cases), in
/// interleaved rounds, once per OpenBLAS thread count; then the latency of a forward batch when one host
/// in four answers 50 ms late (its old announcement is still in the DHT, and the directory's cache still
/// names it: the fan-out rediscovers the restarted host).
/// </summary>
public static class MoEBenchmark
{
    private const int Dim = 256, Batch = 64, K = 2;

    public static async Task<int> RunAsync(int rounds, int callsPerRound, IReadOnlyList<int> blasThreads)
    {
        var folder = Directory.CreateTempSubdirectory("moemesh-moe-bench-").FullName;
        var registry = ExpertRegistry.CreateDefault();
        registry.Register("slowffn", spec => new SlowExpert(BuiltInExperts.Ffn(spec with { Type = "ffn" }), TimeSpan.FromMilliseconds(50)));
        var apps = new List<WebApplication>();
        try
        {
            for (int h = 0; h < 4; h++)
            {
                var options = new NodeOptions { Listen = "127.0.0.1:0", HttpListen = "127.0.0.1:0", UseTls = false, CheckpointDirectory = Path.Combine(folder, $"h{h}") };
                options.Serving.OpenTraining = true;
                options.Experts.AddRange(Enumerable.Range(0, 4).Select(j => new ExpertHostingOptions { Type = "ffn", Uid = $"ffn.{h}.{j}", HiddenDim = Dim }));
                if (apps.Count > 0) options.InitialPeers.Add(Node(apps[0]).ListenAddress.ToString());
                apps.Add(await StartAsync(options, registry));
            }
            var gatingOptions = new NodeOptions { Listen = "127.0.0.1:0", HttpListen = "127.0.0.1:0", UseTls = false, CheckpointDirectory = Path.Combine(folder, "g") };
            gatingOptions.InitialPeers.Add(Node(apps[0]).ListenAddress.ToString());
            var gating = Node(await StartAsync(gatingOptions, registry, apps));
            var grid = new ExpertGrid("ffn", 4, 4);
            var routing = gating.Options.Routing;
            var gate = new GatingNetwork(grid, Dim, 1);
            var layer = gating.CreateMixtureOfExperts(gate, new MixtureOfExpertsOptions { K = K, RouterLosses = null });

            // The same experts in this process: same spec and seed as the hosts build, each with its own optimizer.
            var local = Enumerable.Range(0, 16).ToDictionary(i => $"ffn.{i / 4}.{i % 4}", i =>
            {
                var uid = $"ffn.{i / 4}.{i % 4}";
                var spec = new ExpertSpec("ffn", Dim, null, ExpertSpec.SeedOf(uid));
                return new ExpertBackend(uid, spec, registry.Create(spec), new OptimizerOptions());
            });
            using var input = Random(Batch, 1);
            using var gradient = Random(Batch, 2);
            Console.WriteLine($"MoE layer: 16 ffn experts (d = {Dim}) on 4 nodes, k = {K}, batch {Batch}; gating node separate; TCP loopback, TLS off; {Environment.ProcessorCount} cores");

            var cases = new (string Name, Func<Task> Run)[]
            {
                ("remote forward", async () => { using var s = await layer.ForwardAsync(input, default); }),
                ("in-process forward", () => { InProcess(gate, local, input, null); return Task.CompletedTask; }),
                ("remote forward+backward", async () =>
                {
                    using var s = await layer.ForwardAsync(input, default);
                    using var g = await layer.BackwardAsync(s, gradient, default);
                }),
                ("in-process forward+backward", () => { InProcess(gate, local, input, gradient); return Task.CompletedTask; }),
            };
            // A full round of each first, so tiered compilation has settled before anything is timed.
            foreach (var c in cases)
                for (int n = 0; n < callsPerRound; n++) await c.Run();
            // OpenBLAS's thread count is process-wide: every node of this process (four hosts' compute loops and
            // the gating node) shares it, where real hosts would each have their own machine.
            var rates = new List<(int Threads, double[] SamplesPerSecond)>();
            var best = new double[4];
            foreach (int threads in blasThreads)
            {
                Gemm.Configure(new GemmOptions { Threads = threads }, NullLogger.Instance);
                var seconds = new double[cases.Length];
                for (int r = 0; r < rounds; r++)
                    for (int i = 0; i < cases.Length; i++)
                    {
                        var sw = Stopwatch.StartNew();
                        for (int n = 0; n < callsPerRound; n++) await cases[i].Run();
                        seconds[i] += sw.Elapsed.TotalSeconds;
                    }
                Console.WriteLine();
                Console.WriteLine($"OpenBLAS threads {threads}:");
                for (int i = 0; i < cases.Length; i++) Console.WriteLine($"  {cases[i].Name,-30} {rounds * callsPerRound * Batch / seconds[i],9:F0} samples/s");
                rates.Add((threads, seconds.Select(t => rounds * callsPerRound * Batch / t).ToArray()));
                for (int i = 0; i < cases.Length; i++) best[i] = Math.Max(best[i], rounds * callsPerRound * Batch / seconds[i]);
            }

            // One host in four slow: restart host 3 with experts that answer 50 ms late.
            await apps[3].StopAsync();
            var slowOptions = new NodeOptions { Listen = "127.0.0.1:0", HttpListen = "127.0.0.1:0", UseTls = false, CheckpointDirectory = Path.Combine(folder, "slow") };
            slowOptions.Experts.AddRange(Enumerable.Range(0, 4).Select(j => new ExpertHostingOptions { Type = "slowffn", Uid = $"ffn.3.{j}", HiddenDim = Dim }));
            slowOptions.InitialPeers.Add(Node(apps[0]).ListenAddress.ToString());
            apps[3] = await StartAsync(slowOptions, registry);
            await Task.Delay(TimeSpan.FromSeconds(1));
            var latencies = new List<double>();
            for (int n = 0; n < 3; n++) { using var w = await layer.ForwardAsync(input, default); }
            for (int n = 0; n < 100; n++)
            {
                var sw = Stopwatch.StartNew();
                using var s = await layer.ForwardAsync(input, default);
                latencies.Add(sw.Elapsed.TotalMilliseconds);
            }
            latencies.Sort();
            double p50 = latencies[50], p99 = latencies[98];
            Console.WriteLine();
            Console.WriteLine($"  one host in four 50 ms late: forward batch p50 {p50:F1} ms, p99 {p99:F1} ms (ForwardTimeout {routing.ForwardTimeout.TotalMilliseconds:F0} ms; OpenBLAS threads {Gemm.Default.Threads})");
            Console.WriteLine();
            foreach (var (threads, rate) in rates)
            {
                Goals.Report("moe", $"MoE layer over 4 nodes, forward ({threads} OpenBLAS threads)", Goals.Of(rate[0], "samples/s"), $"the same layer in one process, {Goals.Of(rate[1], "samples/s")}",
                    rate[0] / rate[1], ">= 0.70", rate[0] / rate[1] >= 0.7);
                Goals.Report("moe", $"MoE layer over 4 nodes, forward+backward ({threads} OpenBLAS threads)", Goals.Of(rate[2], "samples/s"), $"the same layer in one process, {Goals.Of(rate[3], "samples/s")}",
                    rate[2] / rate[3], ">= 0.70", rate[2] / rate[3] >= 0.7);
            }
            Console.WriteLine($"Best remote against best in-process, whatever the thread count: forward {best[0] / best[1]:F2}, forward+backward {best[2] / best[3]:F2}");
            Goals.Report("moe", "forward p99 with one host in four 50 ms late", Goals.Of(p99, "ms", "F1"), $"ForwardTimeout, {Goals.Of(routing.ForwardTimeout.TotalMilliseconds, "ms")}",
                p99 / routing.ForwardTimeout.TotalMilliseconds, "<= 1.0", p99 <= routing.ForwardTimeout.TotalMilliseconds);
            return 0;
        }
        finally
        {
            foreach (var app in apps) await app.DisposeAsync();
            Directory.Delete(folder, recursive: true);
        }
    }

    private static MeshNode Node(WebApplication app) => app.Services.GetRequiredService<MeshNode>();

    private static async Task<WebApplication> StartAsync(NodeOptions options, ExpertRegistry registry, List<WebApplication>? track = null)
    {
        var app = NodeHost.Build(options, PeerIdentity.Create(), l => l.ClearProviders(), registry);
        await app.StartAsync();
        track?.Add(app);
        return app;
    }

    /// <summary>The layer in one process: gate, exhaustive top-k, softmax, experts (backward steps each expert's optimizer).</summary>
    private static void InProcess(GatingNetwork gate, Dictionary<string, ExpertBackend> experts, Tensor input, Tensor? gradient)
    {
        var scores = gate.Forward(input);
        var perSample = GatingNetwork.PerSample(scores);
        var routed = new Dictionary<string, List<int>>();
        for (int s = 0; s < input.Rows; s++)
            foreach (var uid in experts.Keys.OrderByDescending(u => gate.Grid.Score(ExpertUid.Parse(u), perSample[s])).Take(K))
                (routed.TryGetValue(uid, out var rows) ? rows : routed[uid] = []).Add(s);
        foreach (var (uid, rows) in routed)
        {
            using var x = Tensor.Uninitialized(new TensorShape(rows.Count, Dim));
            for (int i = 0; i < rows.Count; i++) input.Row(rows[i]).CopyTo(x.Row(i));
            using var y = experts[uid].Forward(x);
            if (gradient is not null) experts[uid].Backward(x, y).Dispose();
        }
        foreach (var t in scores) t.Dispose();
    }

    private static Tensor Random(int rows, ulong seed)
    {
        var t = Tensor.Uninitialized(new TensorShape(rows, Dim));
        new SeededRandom(seed).FillNormal(t.Span, 0f, 1f);
        return t;
    }

    /// <summary>An expert that answers late: the slow host of the latency run.</summary>
    private sealed class SlowExpert(IExpert inner, TimeSpan delay) : IExpert
    {
        public ExpertSchema Schema => inner.Schema;

        public IReadOnlyList<Parameter> Parameters => inner.Parameters;

        public Tensor Forward(Tensor input)
        {
            Thread.Sleep(delay);
            return inner.Forward(input);
        }

        public Tensor Backward(Tensor input, Tensor outputGradient) => inner.Backward(input, outputGradient);
    }
}
