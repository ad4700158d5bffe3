using System.Diagnostics;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Experts;
using MoEMesh.Node.Data;
using MoEMesh.Node.Hosting;
using MoEMesh.Routing.Gating;
using MoEMesh.Routing.Models;
using MoEMesh.Tensors.Gemm;

namespace MoEMesh.Benchmarks;

/// <summary>
/// POST /v1/query against the same model called in process. Four nodes in this process (real TCP on
/// loopback, TLS off) host 16 ffn experts (d = 256) on a 4 × 4 grid; a fifth node holds the model (one MoE
/// layer, k = 2, 60 labels of the shipped data) and answers queries. Cases, in interleaved rounds: 32 HTTP
/// clients each sending one text per query, against the model's PredictAsync on batches of 32 texts on
/// the gating node (no HTTP, no query batching); the query service called directly by 32 callers (its
/// batching without HTTP); one HTTP client against PredictAsync on one text, p50 and p99 (the model in
/// process still calls the experts on their nodes: the ratio is what HTTP and the query service add). All
/// nodes and the clients share this process's cores.
/// </summary>
public static class QueryBenchmark
{
    private const int Dim = 256;

    public static async Task<int> RunAsync(int rounds, TimeSpan perCase, TimeSpan? linger, int blasThreads)
    {
        // OpenBLAS's threads are process-wide and five nodes share this process's cores (see the moe benchmark).
        Gemm.Configure(new GemmOptions { Threads = blasThreads }, NullLogger.Instance);
        var folder = Directory.CreateTempSubdirectory("moemesh-query-bench-").FullName;
        var apps = new List<WebApplication>();
        try
        {
            var registry = ExpertRegistry.CreateDefault();
            for (int h = 0; h < 4; h++)
            {
                var options = new NodeOptions { Listen = "127.0.0.1:0", HttpListen = "127.0.0.1:0", UseTls = false, CheckpointDirectory = Path.Combine(folder, $"h{h}") };
                options.Experts.AddRange(Enumerable.Range(0, 4).Select(j => new ExpertHostingOptions { Type = "ffn", Uid = $"ffn.{h}.{j}", HiddenDim = Dim }));
                if (apps.Count > 0) options.InitialPeers.Add(Node(apps[0]).ListenAddress.ToString());
                apps.Add(await StartAsync(options, registry));
            }
            var data = DataFileReader.Read(Path.Combine(Testing.RepositoryRoot.Path, "data", "test.tsv"), DataFormat.Tsv, new DataColumns()).Examples;
            var texts = data.Select(e => e.Text).Take(4096).ToArray();
            var labels = data.Select(e => e.Label).Distinct().Order(StringComparer.Ordinal).ToArray();
            var spec = new ModelSpec(new TrunkSpec(65_536, Dim), [new LayerSpec("ffn", [4, 4], "ffn", Dim, K: 2, RouterLosses: new RouterLossWeights())], new HeadSpec(labels), new DataColumns());
            var models = Path.Combine(folder, "models");
            ModelFile.Save(Path.Combine(models, "bench.safetensors"), "bench", 1, spec, ModelWeights.Initialize(spec, 1));
            var gatingOptions = new NodeOptions { Listen = "127.0.0.1:0", HttpListen = "127.0.0.1:0", UseTls = false, CheckpointDirectory = Path.Combine(folder, "g"), ModelDirectory = models };
            gatingOptions.InitialPeers.Add(Node(apps[0]).ListenAddress.ToString());
            if (linger is { } l) gatingOptions.Models.QueryBatchLinger = l;
            var gatingApp = await StartAsync(gatingOptions, registry);
            apps.Add(gatingApp);
            var gating = Node(gatingApp);
            var url = new Uri(new Uri(gatingApp.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()), "/v1/query");
            var loaded = ModelFile.Load(Path.Combine(models, "bench.safetensors"));
            var inProcess = new MoEModel(loaded.Spec, loaded.Weights, gating.CreateMixtureOfExperts);
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 }) { Timeout = TimeSpan.FromSeconds(60) };
            Console.WriteLine($"POST /v1/query: 16 ffn experts (d = {Dim}) on 4 nodes, k = 2, a fifth node gating; TCP loopback, TLS off; {Environment.ProcessorCount} cores; {perCase.TotalSeconds:F0} s per case and round; query batch linger {gatingOptions.Models.QueryBatchLinger.TotalMilliseconds} ms; OpenBLAS threads {Gemm.Default.Threads}");

            int next = 0;
            string Text() => texts[Interlocked.Increment(ref next) % texts.Length];
            async Task Http()
            {
                using var response = await http.PostAsJsonAsync(url, new { model = "bench", text = Text() });
                response.EnsureSuccessStatusCode();
            }
            async Task Service()
            {
                var (status, _) = await gating.Queries.AnswerAsync(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new { model = "bench", text = Text() }), default);
                if (status != 200) throw new InvalidOperationException($"status {status}");
            }
            Task Direct(int batch) => inProcess.PredictAsync(Enumerable.Range(0, batch).Select(_ => Text()).ToArray(), default);
            var cases = new (string Name, int Clients, int TextsPerCall, Func<Task> Call)[]
            {
                ("HTTP, 32 clients x 1 text", 32, 1, Http),
                ("in-process, batch 32", 1, 32, () => Direct(32)),
                ("query service, 32 callers", 32, 1, Service),
                ("HTTP, 1 client x 1 text", 1, 1, Http),
                ("in-process, batch 1", 1, 1, () => Direct(1)),
            };
            foreach (var c in cases) await RunCaseAsync(c.Clients, c.Call, TimeSpan.FromSeconds(2));
            var results = cases.Select(_ => new List<(double TextsPerSecond, List<double> Latencies)>()).ToArray();
            var served = gating.LoadedModels.Single();
            long httpTexts = 0, httpBatches = 0;
            for (int r = 0; r < rounds; r++)
                for (int i = 0; i < cases.Length; i++)
                {
                    int batchesBefore = served.Batches;
                    var (calls, seconds, latencies) = await RunCaseAsync(cases[i].Clients, cases[i].Call, perCase);
                    results[i].Add((calls * cases[i].TextsPerCall / seconds, latencies));
                    if (i == 0)
                    {
                        httpTexts += calls;
                        httpBatches += served.Batches - batchesBefore;
                    }
                }
            Console.WriteLine();
            Console.WriteLine($"  {"case",-28} {"texts/s (median)",16} {"p50 ms",8} {"p99 ms",8}");
            var median = new double[cases.Length];
            var p50 = new double[cases.Length];
            var p99 = new double[cases.Length];
            for (int i = 0; i < cases.Length; i++)
            {
                median[i] = results[i].Select(x => x.TextsPerSecond).Order().ElementAt(rounds / 2);
                var all = results[i].SelectMany(x => x.Latencies).Order().ToArray();
                (p50[i], p99[i]) = (all[all.Length / 2], all[Math.Min(all.Length - 1, (int)(0.99 * all.Length))]);
                Console.WriteLine($"  {cases[i].Name,-28} {median[i],16:F0} {p50[i],8:F1} {p99[i],8:F1}");
            }
            Console.WriteLine();
            Console.WriteLine($"  32 HTTP clients: {(double)httpTexts / httpBatches:F1} texts per batch the gating node ran");
            double ratio = median[0] / median[1];
            Goals.Report("query", "32 HTTP clients, one text per POST /v1/query", Goals.Of(median[0], "texts/s"), $"the model in process at batch 32, {Goals.Of(median[1], "texts/s")}", ratio, ">= 0.60", ratio >= 0.6);
            Console.WriteLine($"Query service without HTTP, 32 callers, against in-process batch 32: {median[2] / median[1]:F2}");
            Console.WriteLine($"One HTTP client against in-process batch 1: {median[3] / median[4]:F2}");
            // One text's latency through the swarm against the same model in process (the same experts, called from the gating node).
            Goals.Report("query", "one text per POST /v1/query, one client: p50", Goals.Of(p50[3], "ms", "F2"), $"the model in process at batch 1, {Goals.Of(p50[4], "ms", "F2")}",
                null, "<= 1.5x + 1 ms", p50[3] <= 1.5 * p50[4] + 1);
            Console.WriteLine($"One text per POST /v1/query, one client: p99 {p99[3]:F2} ms against {p99[4]:F2} ms in process ({p99[3] / p99[4]:F2}; no goal)");
            return 0;
        }
        finally
        {
            foreach (var app in apps) await app.DisposeAsync();
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Runs <paramref name="clients"/> loops of <paramref name="call"/> for <paramref name="duration"/>: calls completed, seconds, each call's latency in ms.</summary>
    private static async Task<(int Calls, double Seconds, List<double> Latencies)> RunCaseAsync(int clients, Func<Task> call, TimeSpan duration)
    {
        var latencies = new List<double>();
        var started = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
        {
            while (started.Elapsed < duration)
            {
                long t = Stopwatch.GetTimestamp();
                await call();
                var ms = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
                lock (latencies) latencies.Add(ms);
            }
        }));
        return (latencies.Count, started.Elapsed.TotalSeconds, latencies);
    }

    private static MeshNode Node(WebApplication app) => app.Services.GetRequiredService<MeshNode>();

    private static Task<WebApplication> StartAsync(NodeOptions options, ExpertRegistry registry) => LoopbackNode.StartAsync(options, registry);
}
