using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Experts;
using MoEMesh.Node.Hosting;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;
using MoEMesh.Protocol.Wire;
using MoEMesh.Routing;
using MoEMesh.Routing.Gating;
using MoEMesh.Routing.Invocation;
using MoEMesh.Tensors;
using MoEMesh.Tensors.Gemm;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Benchmarks;

/// <summary>
/// Routing by load: two hosts each serve the same 4 ffn experts (a 2 × 2 grid, replicas of each other) and
/// a third node gates them, k = 2, batch 32 (TCP on loopback, TLS off). Latency of a MoE forward when both
/// hosts are idle, then when one is overloaded: its experts take 20 ms more per batch (a machine whose
/// cores are busy with other work, simulated by sleeping so it does not take this machine's cores) and
/// four other callers keep its queue full. The gating node should send its calls to the idle replica.
/// </summary>
public static class ReplicaBenchmark
{
    private const int Dim = 256, Batch = 32, K = 2;
    private static readonly TimeSpan Overload = TimeSpan.FromMilliseconds(20);

    public static async Task<int> RunAsync(int forwards)
    {
        Gemm.Configure(new GemmOptions { Threads = 1 }, NullLogger.Instance);
        var folder = Directory.CreateTempSubdirectory("moemesh-replica-bench-").FullName;
        var registry = ExpertRegistry.CreateDefault();
        registry.Register("busyffn", spec => new LateExpert(BuiltInExperts.Ffn(spec with { Type = "ffn" }), Overload));
        try
        {
            using var input = BenchmarkInputs.RandomRows(Batch, Dim, 1);
            Console.WriteLine($"replicas: 4 ffn experts (d = {Dim}) on each of 2 hosts, k = {K}, batch {Batch}; gating node separate; TCP loopback, TLS off; {Environment.ProcessorCount} cores; {forwards} forwards per case");
            var idle = await MeasureAsync(Path.Combine(folder, "idle"), registry, input, forwards, overloaded: false);
            var busy = await MeasureAsync(Path.Combine(folder, "busy"), registry, input, forwards, overloaded: true);
            Console.WriteLine();
            Console.WriteLine($"  both replicas idle:       p50 {idle.P50:F2} ms, p99 {idle.P99:F2} ms; calls to the second host {idle.ToSecond:P0}");
            Console.WriteLine($"  one replica overloaded:   p50 {busy.P50:F2} ms, p99 {busy.P99:F2} ms; calls to it {busy.ToSecond:P0} (its batches take {Overload.TotalMilliseconds:F0} ms more, 4 other callers keep it full)");
            Console.WriteLine();
            Goals.Report("replicas", "MoE forward p99, one of two replicas overloaded", Goals.Of(busy.P99, "ms", "F2"), $"both idle, {Goals.Of(idle.P99, "ms", "F2")}",
                busy.P99 / idle.P99, "<= 1.3", busy.P99 <= 1.3 * idle.P99);
            Goals.Report("replicas", "MoE forward p50, one of two replicas overloaded", Goals.Of(busy.P50, "ms", "F2"), $"both idle, {Goals.Of(idle.P50, "ms", "F2")}",
                busy.P50 / idle.P50, "<= 1.3", busy.P50 <= 1.3 * idle.P50);
            return 0;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task<(double P50, double P99, double ToSecond)> MeasureAsync(string folder, ExpertRegistry registry, Tensor input, int forwards, bool overloaded)
    {
        var apps = new List<WebApplication>();
        try
        {
            var first = await StartAsync(apps, Options(folder, "first", "ffn", null), registry);
            var second = await StartAsync(apps, Options(folder, "second", overloaded ? "busyffn" : "ffn", first), registry);
            var gatingOptions = Options(folder, "gating", null, first);
            var gating = await StartAsync(apps, gatingOptions, registry);
            var layer = gating.CreateMixtureOfExperts(new GatingNetwork(new ExpertGrid("ffn", 2, 2), Dim, 1), new MixtureOfExpertsOptions { K = K, RouterLosses = null });

            using var stopLoad = new CancellationTokenSource();
            var load = overloaded ? KeepBusyAsync(second, stopLoad.Token) : Task.CompletedTask;
            for (int n = 0; n < 20; n++) (await layer.ForwardAsync(input, default)).Dispose();
            await Task.Delay(TimeSpan.FromMilliseconds(500), CancellationToken.None); // the load has filled the queue
            var latencies = new List<double>();
            int calls = 0, toSecond = 0;
            for (int n = 0; n < forwards; n++)
            {
                var sw = Stopwatch.StartNew();
                using var step = await layer.ForwardAsync(input, default);
                latencies.Add(sw.Elapsed.TotalMilliseconds);
                calls += step.Experts.Trace.Count;
                toSecond += step.Experts.Trace.Count(t => t.Host == second.PeerId.ToString());
            }
            await stopLoad.CancelAsync();
            await load;
            latencies.Sort();
            return (latencies[latencies.Count / 2], latencies[(int)(latencies.Count * 0.99) - 1], (double)toSecond / calls);
        }
        finally
        {
            foreach (var app in apps) await app.DisposeAsync();
        }
    }

    private static NodeOptions Options(string folder, string name, string? type, MeshNode? join)
    {
        var options = LoopbackNode.Options(folder, name);
        if (type is not null) options.Experts.AddRange(Enumerable.Range(0, 4).Select(i => new ExpertHostingOptions { Type = type, Uid = $"ffn.{i / 2}.{i % 2}", HiddenDim = Dim }));
        if (join is not null) options.InitialPeers.Add(join.ListenAddress.ToString());
        return options;
    }

    private static async Task<MeshNode> StartAsync(List<WebApplication> apps, NodeOptions options, ExpertRegistry registry)
    {
        var app = await LoopbackNode.StartAsync(options, registry);
        apps.Add(app);
        return app.Services.GetRequiredService<MeshNode>();
    }

    /// <summary>Four callers of their own, each sending batches of 32 to the host's experts in turn until stopped.</summary>
    private static async Task KeepBusyAsync(MeshNode host, CancellationToken stop)
    {
        var uids = host.Experts.Keys.Select(ExpertUid.Parse).ToArray();
        await Task.WhenAll(Enumerable.Range(0, 4).Select(async c =>
        {
            using var identity = PeerIdentity.Create();
            await using var pool = new PeerConnectionPool(identity, new Protocol.PeerProtocolOptions { UseTls = false }, TimeProvider.System);
            var invoker = new RemoteExpertInvoker(new TcpPeerTransport(pool, TimeProvider.System));
            using var rows = BenchmarkInputs.RandomRows(Batch, Dim, (ulong)(10 + c));
            for (int n = c; !stop.IsCancellationRequested; n++)
            {
                var target = new ExpertTarget(uids[n % uids.Length], new PeerEndpoint(host.ListenAddress, host.PeerId));
                var result = await invoker.ForwardAsync(target, rows, Compression.None, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(30), default);
                result.Value?.Dispose();
            }
        }));
    }
}
