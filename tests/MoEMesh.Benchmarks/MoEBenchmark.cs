using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Experts;
using MoEMesh.Node.Hosting;
using MoEMesh.Protocol.Addressing;
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
/// TCP on loopback, TLS off) host 16 ffn experts on a 4 × 4 grid; a fifth node gates, k = 2. The reference
/// is one node hosting all 16 experts and gating them itself: the same layer code (gate, beam search,
/// combine, the gate's backward), the same batching runtime running experts side by side on the same
/// cores, and no network. Throughput of forward and of forward + backward (experts step their optimizers
/// on their hosts in both cases), in interleaved rounds, once per OpenBLAS thread count; then the latency
/// of a forward batch when one host in four answers 50 ms late (its old announcement is still in the DHT,
/// and the directory's cache still names it: the fan-out rediscovers the restarted host).
/// </summary>
public static class MoEBenchmark
{
    private const int Dim = 256, Batch = 64, K = 2;

    public static async Task<int> RunAsync(int rounds, int callsPerRound, IReadOnlyList<int> blasThreads)
    {
        var folder = Directory.CreateTempSubdirectory("moemesh-moe-bench-").FullName;
        var registry = ExpertRegistry.CreateDefault();
        registry.Register("slowffn", spec => new LateExpert(BuiltInExperts.Ffn(spec with { Type = "ffn" }), TimeSpan.FromMilliseconds(50)));
        int cores = Environment.ProcessorCount;
        try
        {
            using var input = BenchmarkInputs.RandomRows(Batch, Dim, 1);
            using var gradient = BenchmarkInputs.RandomRows(Batch, Dim, 2);
            Console.WriteLine($"MoE layer: 16 ffn experts (d = {Dim}) on 4 nodes, k = {K}, batch {Batch}; gating node separate; TCP loopback, TLS off; {cores} cores");
            Console.WriteLine("One node: hosting the 16 experts, it gates them itself. Each host runs cores / OpenBLAS threads batches at once, as a node does; the node alone runs as many as the four hosts together.");

            // OpenBLAS's thread count is process-wide: every node of this process (four hosts and the gating
            // node, or the one node) shares it, where real hosts would each have their own machine.
            var rates = new List<(int Threads, double[] SamplesPerSecond)>();
            var best = new double[4];
            foreach (int threads in blasThreads)
            {
                Gemm.Configure(new GemmOptions { Threads = threads }, NullLogger.Instance);
                await using var swarm = await Swarm.StartAsync(Path.Combine(folder, $"t{threads}"), registry, threads);
                var cases = new (string Name, Func<Task> Run)[]
                {
                    ("remote forward", () => ForwardAsync(swarm.Layer, input)),
                    ("one node, forward", () => ForwardAsync(swarm.AloneLayer, input)),
                    ("remote forward+backward", () => ForwardBackwardAsync(swarm.Layer, input, gradient)),
                    ("one node, forward+backward", () => ForwardBackwardAsync(swarm.AloneLayer, input, gradient)),
                };
                // A full round of each first, so tiered compilation has settled before anything is timed.
                foreach (var c in cases)
                    for (int n = 0; n < callsPerRound; n++) await c.Run();
                var seconds = new double[cases.Length];
                for (int r = 0; r < rounds; r++)
                    for (int i = 0; i < cases.Length; i++)
                    {
                        var sw = Stopwatch.StartNew();
                        for (int n = 0; n < callsPerRound; n++) await cases[i].Run();
                        seconds[i] += sw.Elapsed.TotalSeconds;
                    }
                Console.WriteLine();
                Console.WriteLine($"OpenBLAS threads {threads}, {swarm.ConcurrentBatches} batches at once per node:");
                for (int i = 0; i < cases.Length; i++) Console.WriteLine($"  {cases[i].Name,-30} {rounds * callsPerRound * Batch / seconds[i],9:F0} samples/s");
                rates.Add((threads, seconds.Select(t => rounds * callsPerRound * Batch / t).ToArray()));
                for (int i = 0; i < cases.Length; i++) best[i] = Math.Max(best[i], rounds * callsPerRound * Batch / seconds[i]);
            }

            // One host in four slow, with the cores shared out as a node does by default: host 3 restarted with experts that answer 50 ms late.
            Gemm.Configure(new GemmOptions { Threads = 1 }, NullLogger.Instance);
            var (p50, p99, timeout, concurrent) = await SlowHostLatencyAsync(Path.Combine(folder, "slow"), registry, input);
            Console.WriteLine();
            Console.WriteLine($"  one host in four 50 ms late: forward batch p50 {p50:F1} ms, p99 {p99:F1} ms (ForwardTimeout {timeout:F0} ms; OpenBLAS threads 1, {concurrent} batches at once per node)");
            Console.WriteLine();
            foreach (var (threads, rate) in rates)
            {
                Goals.Report("moe", $"MoE layer over 4 nodes, forward ({threads} OpenBLAS threads)", Goals.Of(rate[0], "samples/s"), $"the same layer on one node, {Goals.Of(rate[1], "samples/s")}",
                    rate[0] / rate[1], ">= 0.80", rate[0] / rate[1] >= 0.8);
                Goals.Report("moe", $"MoE layer over 4 nodes, forward+backward ({threads} OpenBLAS threads)", Goals.Of(rate[2], "samples/s"), $"the same layer on one node, {Goals.Of(rate[3], "samples/s")}",
                    rate[2] / rate[3], ">= 0.70", rate[2] / rate[3] >= 0.7);
            }
            Console.WriteLine($"Best remote against best on one node, whatever the thread count: forward {best[0] / best[1]:F2}, forward+backward {best[2] / best[3]:F2}");
            Goals.Report("moe", "forward p99 with one host in four 50 ms late", Goals.Of(p99, "ms", "F1"), $"ForwardTimeout, {Goals.Of(timeout, "ms")}",
                p99 / timeout, "<= 1.0", p99 <= timeout);
            return 0;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Forward latency over a swarm whose host 3 answers 50 ms late (its experts run side by side, so not 4 × 50 ms).</summary>
    private static async Task<(double P50, double P99, double TimeoutMs, int Concurrent)> SlowHostLatencyAsync(string folder, ExpertRegistry registry, Tensor input)
    {
        await using var swarm = await Swarm.StartAsync(folder, registry, blasThreads: 1);
        await swarm.ReplaceHostAsync(3, "slowffn");
        await Task.Delay(TimeSpan.FromSeconds(1));
        var latencies = new List<double>();
        for (int n = 0; n < 3; n++) await ForwardAsync(swarm.Layer, input);
        for (int n = 0; n < 100; n++)
        {
            var sw = Stopwatch.StartNew();
            await ForwardAsync(swarm.Layer, input);
            latencies.Add(sw.Elapsed.TotalMilliseconds);
        }
        latencies.Sort();
        return (latencies[50], latencies[98], swarm.Gating.Options.Routing.ForwardTimeout.TotalMilliseconds, swarm.ConcurrentBatches);
    }

    /// <summary>
    /// Four hosts of 4 experts each and a gating node in one swarm; one node hosting all 16 alone in
    /// another. Every node runs cores / <c>blasThreads</c> batches at once, as a node started with
    /// <c>--blas-threads</c> does.
    /// </summary>
    private sealed class Swarm : IAsyncDisposable
    {
        private readonly List<WebApplication> _apps = []; // the hosts, by index
        private readonly List<WebApplication> _others = []; // the gating node and the node alone
        private readonly string _folder;
        private readonly ExpertRegistry _registry;
        private readonly int _blasThreads;

        private Swarm(string folder, ExpertRegistry registry, int blasThreads)
        {
            _folder = folder;
            _registry = registry;
            _blasThreads = blasThreads;
        }

        public MeshNode Gating { get; private set; } = null!;

        public MixtureOfExperts Layer { get; private set; } = null!;

        public MixtureOfExperts AloneLayer { get; private set; } = null!;

        public int ConcurrentBatches => Gating.Budget.ConcurrentBatches;

        public static async Task<Swarm> StartAsync(string folder, ExpertRegistry registry, int blasThreads)
        {
            var swarm = new Swarm(folder, registry, blasThreads);
            try
            {
                for (int h = 0; h < 4; h++) swarm._apps.Add(await swarm.StartHostAsync(h, "ffn"));
                var gating = swarm.Options("g");
                gating.InitialPeers.Add(Node(swarm._apps[0]).ListenAddress.ToString());
                swarm.Gating = Node(await swarm.StartOtherAsync(gating));
                var grid = new ExpertGrid("ffn", 4, 4);
                swarm.Layer = swarm.Gating.CreateMixtureOfExperts(new GatingNetwork(grid, Dim, 1), new MixtureOfExpertsOptions { K = K, RouterLosses = null });

                // The same 16 experts (same specs and seeds) on one node of its own swarm, which gates them itself.
                var alone = swarm.Options("alone");
                alone.Batching.ConcurrentBatches *= 4; // as many batches at once as the four hosts together
                alone.Experts.AddRange(Enumerable.Range(0, 16).Select(i => new ExpertHostingOptions { Type = "ffn", Uid = $"ffn.{i / 4}.{i % 4}", HiddenDim = Dim }));
                swarm.AloneLayer = Node(await swarm.StartOtherAsync(alone)).CreateMixtureOfExperts(new GatingNetwork(grid, Dim, 1), new MixtureOfExpertsOptions { K = K, RouterLosses = null });
                return swarm;
            }
            catch
            {
                await swarm.DisposeAsync();
                throw;
            }
        }

        /// <summary>Stops host <paramref name="h"/> and starts it again with experts of <paramref name="type"/> (its old records stay in the DHT).</summary>
        public async Task ReplaceHostAsync(int h, string type)
        {
            await _apps[h].StopAsync();
            await _apps[h].DisposeAsync();
            _apps[h] = await StartHostAsync(h, type);
        }

        private async Task<WebApplication> StartHostAsync(int h, string type)
        {
            var options = Options($"h{h}-{type}");
            options.Serving.OpenTraining = true;
            options.Experts.AddRange(Enumerable.Range(0, 4).Select(j => new ExpertHostingOptions { Type = type, Uid = $"ffn.{h}.{j}", HiddenDim = Dim }));
            if (h > 0 || _apps.Count > 0) options.InitialPeers.Add(Node(_apps[h == 0 ? 1 : 0]).ListenAddress.ToString());
            return await StartAsync(options);
        }

        private NodeOptions Options(string name)
        {
            var options = LoopbackNode.Options(_folder, name);
            options.Batching.ConcurrentBatches = Math.Max(1, Environment.ProcessorCount / _blasThreads);
            return options;
        }

        private async Task<WebApplication> StartOtherAsync(NodeOptions options)
        {
            var app = await StartAsync(options);
            _others.Add(app);
            return app;
        }

        private Task<WebApplication> StartAsync(NodeOptions options) => LoopbackNode.StartAsync(options, _registry);

        public async ValueTask DisposeAsync()
        {
            foreach (var app in _others.Concat(_apps)) await app.DisposeAsync();
        }
    }

    private static MeshNode Node(WebApplication app) => app.Services.GetRequiredService<MeshNode>();

    private static async Task ForwardAsync(MixtureOfExperts layer, Tensor input)
    {
        using var output = await layer.ForwardAsync(input, default);
    }

    private static async Task ForwardBackwardAsync(MixtureOfExperts layer, Tensor input, Tensor gradient)
    {
        using var output = await layer.ForwardAsync(input, default);
        using var inputGradient = await layer.BackwardAsync(output, gradient, default);
    }
}
