using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MoEMesh.Experts;
using MoEMesh.Node.Hosting;
using MoEMesh.Protocol;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;
using MoEMesh.Protocol.Wire;
using MoEMesh.Routing.Invocation;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Benchmarks;

/// <summary>
/// Expert serving throughput on one node (a real node in this process, TCP on loopback, TLS off): 16
/// callers (each its own client and connection) sending batches of 8 rows, one caller sending batches of
/// 128, and the same expert called in-process, in interleaved rounds. Then latency of one batch of 64
/// remote against in-process. Forward passes of one ffn expert, d = 1024. Prints the mean rows of the
/// batches the node ran in each case, which shows whether the small calls were batched together.
/// </summary>
public static class NodeBenchmark
{
    private const int Dim = 1024;

    public static async Task<int> RunAsync(TimeSpan roundLength, int rounds)
    {
        var folder = Directory.CreateTempSubdirectory("moemesh-bench-").FullName;
        var options = new NodeOptions
        {
            Listen = "127.0.0.1:0", HttpListen = "127.0.0.1:0", UseTls = false, CheckpointDirectory = folder,
            Experts = [new ExpertHostingOptions { Type = "ffn", Uid = "ffn.0.0", HiddenDim = Dim }],
        };
        await using var app = NodeHost.Build(options, PeerIdentity.Create(), l => l.ClearProviders());
        await app.StartAsync();
        var node = app.Services.GetRequiredService<MeshNode>();
        var target = new ExpertTarget(ExpertUid.Parse("ffn.0.0"), new PeerEndpoint(node.ListenAddress, node.PeerId));
        var local = ExpertRegistry.CreateDefault().Create(new ExpertSpec("ffn", Dim));
        var clients = Enumerable.Range(0, 16).Select(_ => new Client()).ToArray();
        try
        {
            Console.WriteLine($"expert serving: ffn d = {Dim} (inner {4 * Dim}), forward passes; {Environment.ProcessorCount} cores; {rounds} interleaved rounds of {roundLength.TotalSeconds:F1} s");
            using var small = Random(8);
            using var large = Random(128);
            using var medium = Random(64);
            var cases = new (string Name, Func<TimeSpan, Task<double>> Run)[]
            {
                ("16 callers x batch 8 (remote)", d => SamplesPerSecondAsync(clients.Select(c => (Func<Task>)(() => c.ForwardAsync(target, small))).ToArray(), 8, d)),
                ("1 caller x batch 128 (remote)", d => SamplesPerSecondAsync([() => clients[0].ForwardAsync(target, large)], 128, d)),
                ("in-process x batch 128", d => SamplesPerSecondAsync([() => { local.Forward(large).Dispose(); return Task.CompletedTask; }], 128, d)),
            };
            var throughput = new double[cases.Length];
            var batchRows = cases.Select(_ => new BatchRows()).ToArray();
            foreach (var c in cases) await c.Run(TimeSpan.FromMilliseconds(300));
            int running = 0;
            using (BatchRows.Listen(() => batchRows[Volatile.Read(ref running)]))
            {
                for (int r = 0; r < rounds; r++)
                    for (int i = 0; i < cases.Length; i++)
                    {
                        Volatile.Write(ref running, i);
                        throughput[i] += await cases[i].Run(roundLength) / rounds;
                    }
            }
            Console.WriteLine();
            for (int i = 0; i < cases.Length; i++)
                Console.WriteLine($"  {cases[i].Name,-32} {throughput[i],10:F0} samples/s{(batchRows[i].Batches > 0 ? $"   batches of {batchRows[i].Mean:F1} rows on average" : "")}");

            var remote64 = new List<double>();
            var local64 = new List<double>();
            for (int i = 0; i < 5; i++)
            {
                await clients[1].ForwardAsync(target, medium);
                local.Forward(medium).Dispose();
            }
            for (int i = 0; i < 40; i++)
            {
                remote64.Add(await TimeAsync(() => clients[1].ForwardAsync(target, medium)));
                local64.Add(await TimeAsync(() => { local.Forward(medium).Dispose(); return Task.CompletedTask; }));
            }
            double remoteMs = Median(remote64), localMs = Median(local64);
            Console.WriteLine();
            Console.WriteLine($"  batch 64, one call: remote p50 {remoteMs:F2} ms, in-process p50 {localMs:F2} ms");
            Console.WriteLine();
            double batching = throughput[0] / throughput[1], overhead = remoteMs / localMs;
            Goals.Report("node", "16 callers sending batches of 8 to one expert", Goals.Of(throughput[0], "samples/s"), $"1 caller sending batches of 128, {Goals.Of(throughput[1], "samples/s")}", batching, ">= 0.80", batching >= 0.8);
            Goals.Report("node", "one remote call of batch 64, p50", Goals.Of(remoteMs, "ms", "F2"), $"in process, {Goals.Of(localMs, "ms", "F2")}", overhead, "<= 1.3", overhead <= 1.3);
            return 0;
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
            await app.StopAsync();
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Rows of the batches the node's runtime ran (its moemesh.experts.batch.rows measurements).</summary>
    private sealed class BatchRows
    {
        private long _rows, _batches;

        public long Batches => Interlocked.Read(ref _batches);

        public double Mean => (double)Interlocked.Read(ref _rows) / Batches;

        public static MeterListener Listen(Func<BatchRows> into)
        {
            var listener = new MeterListener();
            listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == Experts.Runtime.BatchingRuntime.MeterName && instrument.Name == "moemesh.experts.batch.rows") l.EnableMeasurementEvents(instrument);
            };
            listener.SetMeasurementEventCallback<int>((_, rows, _, _) =>
            {
                var target = into();
                Interlocked.Add(ref target._rows, rows);
                Interlocked.Increment(ref target._batches);
            });
            listener.Start();
            return listener;
        }
    }

    private static async Task<double> SamplesPerSecondAsync(Func<Task>[] callers, int rowsPerCall, TimeSpan length)
    {
        var start = Stopwatch.GetTimestamp();
        var counts = await Task.WhenAll(callers.Select(async call =>
        {
            int calls = 0;
            while (Stopwatch.GetElapsedTime(start) < length)
            {
                await call();
                calls++;
            }
            return calls;
        }));
        return counts.Sum() * rowsPerCall / Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    private static async Task<double> TimeAsync(Func<Task> call)
    {
        long t = Stopwatch.GetTimestamp();
        await call();
        return Stopwatch.GetElapsedTime(t).TotalMilliseconds;
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

    private static Tensor Random(int rows)
    {
        var random = new Random(rows);
        var values = new float[rows * Dim];
        for (int i = 0; i < values.Length; i++) values[i] = (float)(random.NextDouble() * 2 - 1);
        return Tensor.FromArray(values, new Tensors.TensorShape(rows, Dim));
    }

    /// <summary>One calling peer: its own identity and connection.</summary>
    private sealed class Client : IAsyncDisposable
    {
        private readonly PeerIdentity _identity = PeerIdentity.Create();
        private readonly PeerConnectionPool _pool;
        private readonly RemoteExpertInvoker _invoker;

        public Client()
        {
            _pool = new PeerConnectionPool(_identity, new PeerProtocolOptions { UseTls = false }, TimeProvider.System);
            _invoker = new RemoteExpertInvoker(new TcpPeerTransport(_pool, TimeProvider.System));
        }

        public async Task ForwardAsync(ExpertTarget target, Tensor input)
        {
            var result = await _invoker.ForwardAsync(target, input, Compression.None, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(30), default);
            if (!result.IsOk) throw new InvalidOperationException($"forward failed: {result}");
            result.Value!.Dispose();
        }

        public async ValueTask DisposeAsync()
        {
            await _pool.DisposeAsync();
            _identity.Dispose();
        }
    }
}
