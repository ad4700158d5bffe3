using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MoEMesh.Dht.Transport;
using MoEMesh.Node.Hosting;
using MoEMesh.Protocol;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Framing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Invocation;
using MoEMesh.Testing;
using Wire = MoEMesh.Protocol.Wire.Dht;

namespace MoEMesh.Benchmarks;

/// <summary>
/// Runs each attack of the hardening issue against one node in this process (TLS on, defaults), a fixed
/// count each, while an honest client keeps calling the node's expert; prints per attack how the honest
/// calls fared against a quiet baseline (share answered, p99 latency and its ratio), the process's peak
/// managed and resident memory against idle (the attackers live in this process too, so this is an upper
/// bound for the node), and whether the attack succeeded. Goals: honest calls 100 %, p99 at most 2x,
/// memory under 2x idle, no attack succeeds.
/// </summary>
public static class AbuseBenchmark
{
    private const string Uid = "ffn.0.0";
    private const int Width = 64;

    public static async Task<int> RunAsync(int honestCalls)
    {
        var folder = Directory.CreateTempSubdirectory("moemesh-abuse-").FullName;
        var options = new NodeOptions
        {
            Listen = "127.0.0.1:0", HttpListen = "127.0.0.1:0", CheckpointDirectory = folder, ModelDirectory = Path.Combine(folder, "models"),
            Experts = [new ExpertHostingOptions { Type = "ffn", Uid = Uid, HiddenDim = Width }],
            // This node's expert is tiny; a volunteer's weights dwarf the default 128 MiB of DHT records, so
            // the bound is lowered here to keep "memory under 2x idle" a test of the bound, not of its size.
            Dht = new Dht.DhtOptions { MaxStoredBytes = 32L << 20 },
        };
        await using var app = NodeHost.Build(options, PeerIdentity.Create(), l => l.ClearProviders());
        await app.StartAsync();
        var node = app.Services.GetRequiredService<MeshNode>();
        var endpoint = new PeerEndpoint(node.ListenAddress, node.PeerId);
        await using var honest = new Client();
        var target = new ExpertTarget(ExpertUid.Parse(Uid), endpoint);
        try
        {
            Console.WriteLine($"abuse: one node (TLS on, default limits but MaxStoredBytes 32 MiB) hosting {Uid} (ffn, d = {Width}); an honest client calls it (batch 8)");
            Console.WriteLine($"throughout; attackers run in this process at full speed, so they also take the honest client's CPU ({Environment.ProcessorCount} cores)");
            Console.WriteLine();
            Console.WriteLine($"{"attack",-44} {"ops",6} {"succeeded",9} | {"honest ok",9} {"p99 ms",7} {"x base",6} | {"managed MB",10} {"RSS MB",7} {"x idle",6}");
            for (int i = 0; i < 20; i++) await honest.ForwardAsync(target); // warm up
            GC.Collect();
            var baseline = await MeasureAsync(honest, target, honestCalls, () => Task.FromResult(new Outcome(0, false, "")));
            Print("(none: the quiet baseline)", baseline, baseline, baseline);
            var attacks = Attacks(node, endpoint, options.Dht.MaxStoredBytes);
            var results = new List<(string Name, Measurement M)>();
            foreach (var (name, attack) in attacks)
            {
                GC.Collect();
                var measured = await MeasureAsync(honest, target, honestCalls, attack);
                results.Add((name, measured));
                Print(name, measured, baseline, baseline);
            }
            Console.WriteLine();
            Console.WriteLine("ops: attack operations sent. succeeded: did the attack get what it wanted (see each attack below). honest ok and p99: the honest");
            Console.WriteLine("client's forward calls while the attack ran; x base: p99 over the quiet baseline's. managed and RSS: peaks of this process (node,");
            Console.WriteLine("honest client and attackers together) while the attack ran; x idle: RSS over the baseline's peak.");
            Console.WriteLine();
            bool allOk = results.All(r => r.M.HonestOk == 1.0), fast = results.All(r => r.M.P99 <= 2 * baseline.P99);
            bool lean = results.All(r => r.M.PeakRss <= 2 * baseline.PeakRss), held = results.All(r => !r.M.Outcome.Succeeded);
            var slowest = results.MaxBy(r => r.M.P99);
            var fattest = results.MaxBy(r => r.M.PeakRss);
            Goals.Report("abuse", "honest calls answered under the worst attack", $"{results.Min(r => r.M.HonestOk):P1}", $"quiet, {baseline.HonestOk:P1}", results.Min(r => r.M.HonestOk) / baseline.HonestOk, "100 %", allOk);
            Goals.Report("abuse", $"honest p99 under the worst attack ({slowest.Name})", Goals.Of(slowest.M.P99, "ms", "F2"), $"quiet, {Goals.Of(baseline.P99, "ms", "F2")}", slowest.M.P99 / baseline.P99, "<= 2.0", fast);
            Goals.Report("abuse", $"peak RSS under the worst attack ({fattest.Name})", Goals.Of(fattest.M.PeakRss / 1e6, "MB"), $"idle, {Goals.Of(baseline.PeakRss / 1e6, "MB")}", (double)fattest.M.PeakRss / baseline.PeakRss, "< 2.0", lean);
            Goals.Report("abuse", "attacks that got what they wanted", $"{results.Count(r => r.M.Outcome.Succeeded)} of {results.Count}", "none", null, "0", held);
            foreach (var (name, m) in results.Where(r => r.M.Outcome.Note.Length > 0)) Console.WriteLine($"  {name}: {m.Outcome.Note}");
            return 0;
        }
        finally
        {
            await app.StopAsync();
            Directory.Delete(folder, recursive: true);
        }
    }

    private static void Print(string name, Measurement m, Measurement baseline, Measurement idle) =>
        Console.WriteLine($"{name,-44} {(m.Outcome.Ops == 0 ? "-" : m.Outcome.Ops.ToString()),6} {(m.Outcome.Ops == 0 ? "-" : m.Outcome.Succeeded ? "YES" : "no"),9} | "
            + $"{m.HonestOk,9:P1} {m.P99,7:F2} {m.P99 / baseline.P99,6:F2} | {m.PeakManaged / 1e6,10:F0} {m.PeakRss / 1e6,7:F0} {(double)m.PeakRss / idle.PeakRss,6:F2}");

    /// <summary>Each attack: what it sends, and whether it got what it wanted.</summary>
    private static List<(string Name, Func<Task<Outcome>> Run)> Attacks(MeshNode node, PeerEndpoint endpoint, long maxStoredBytes)
    {
        string expertKey = "expert:" + Uid;
        return
        [
            ("unsigned plain value over an expert's key", async () =>
            {
                // Succeeds if the node takes it, or stops listing its own signed host entry under the key.
                await using var attacker = new Client();
                int stored = 0;
                for (int i = 0; i < 200; i++)
                    if (await attacker.StoreAsync(endpoint, new Wire.DhtRecord { Key = expertKey, Value = ByteString.CopyFrom(6, 6, 6), ExpirationUnixMs = Later(59) }) == Wire.StoreStatus.Stored) stored++;
                var held = await attacker.FindAsync(endpoint, expertKey);
                bool hidden = !held.Any(r => r.HasSubkey && r.Subkey == node.PeerId.ToString());
                return new Outcome(200, stored > 0 || hidden, stored > 0 ? $"{stored} plain values taken" : "");
            }),
            ("forged prefix entries", async () =>
            {
                // Entries under prefix: keys that name a host other than their signer; succeeds if any is taken.
                await using var attacker = new Client();
                int stored = 0;
                for (int i = 0; i < 200; i++)
                {
                    var record = Dht.Records.DhtRecord.Signed("prefix:ffn.0", $"{i % 4}:{node.PeerId}", new byte[] { 1 }, DateTimeOffset.UtcNow + TimeSpan.FromMinutes(5), attacker.Identity);
                    var wire = new Wire.DhtRecord
                    {
                        Key = record.Key, Subkey = record.Subkey, Value = ByteString.CopyFrom(record.Value.Span), ExpirationUnixMs = record.ExpirationUnixMs,
                        PublicKey = ByteString.CopyFrom(record.PublicKey.Span), Signature = ByteString.CopyFrom(record.Signature.Span),
                    };
                    if (await attacker.StoreAsync(endpoint, wire) == Wire.StoreStatus.Stored) stored++;
                }
                return new Outcome(200, stored > 0, stored > 0 ? $"{stored} forged prefix entries taken" : "");
            }),
            ("anonymous training (expert.backward)", async () =>
            {
                // Succeeds if any backward is taken (the expert's version moves).
                await using var attacker = new Client();
                var expert = new ExpertTarget(ExpertUid.Parse(Uid), endpoint);
                using var input = Random(8);
                using var gradient = Random(8);
                int taken = 0;
                for (int i = 0; i < 300; i++)
                {
                    var result = await attacker.Invoker.BackwardAsync(expert, input, gradient, frozen: false, Compression.None, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(5), default);
                    if (result.IsOk) taken++;
                    result.Value?.Dispose();
                }
                var info = await attacker.Invoker.InfoAsync(expert, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(5), default);
                return new Outcome(300, taken > 0 || info.Value?.Version > 0, taken > 0 ? $"{taken} backward calls taken" : "");
            }),
            ("tensor header declaring 2^26 rows", async () =>
            {
                // A 256-byte payload whose header declares [2^26, 64]; succeeds unless every one is refused on the header.
                await using var attacker = new Client();
                int refused = 0;
                for (int i = 0; i < 300; i++)
                {
                    var header = new TensorHeader { Dtype = DType.F32, Compression = Compression.None, Offset = 0, Length = 256 };
                    header.Shape.Add([1 << 26, Width]);
                    using var response = await attacker.Transport.CallAsync(endpoint, PeerRequest.Create(RemoteExpertInvoker.ForwardMethod,
                        new ForwardRequest { Uid = Uid, Input = header }, new byte[256], DateTimeOffset.UtcNow + TimeSpan.FromSeconds(5)), default);
                    if (response.Status is StatusCode.ResourceExhausted or StatusCode.InvalidArgument) refused++;
                }
                return new Outcome(300, refused < 300, "");
            }),
            ("deadline_micros = long.MaxValue", async () =>
            {
                // Succeeds if any such request goes unanswered.
                await using var raw = await RawConnection.OpenAsync(endpoint.Address, PeerIdentity.Create(), useTls: true);
                var info = new ExpertInfoRequest { Uid = Uid }.ToByteString();
                for (ulong id = 1; id <= 200; id++)
                    await raw.SendAsync(RawConnection.RequestFrames(id, new RequestEnvelope { Method = RemoteExpertInvoker.InfoMethod, DeadlineMicros = long.MaxValue, Header = info }));
                int answered = 0;
                for (ulong id = 1; id <= 200; id++)
                    if ((await raw.ReadResponseAsync(id)).Status == StatusCode.Ok) answered++;
                return new Outcome(200, answered < 200, answered < 200 ? $"{200 - answered} unanswered" : "");
            }),
            ("2,000 messages started, never finished", async () =>
            {
                // First frames announcing 1 MB each; succeeds if the node keeps the connection (and the partials).
                await using var raw = await RawConnection.OpenAsync(endpoint.Address, PeerIdentity.Create(), useTls: true);
                try
                {
                    for (ulong id = 1; id <= 2000; id++) await raw.SendAsync(RawConnection.FirstFrameOnly(id, RemoteExpertInvoker.ForwardMethod, 1_000_000));
                }
                catch (IOException)
                {
                    // cut off while sending
                }
                return new Outcome(2000, !await raw.ClosedWithinAsync(TimeSpan.FromSeconds(5)), "");
            }),
            ("200,000 pings, pongs never read", async () =>
            {
                // Succeeds if the node keeps queueing pongs for a peer that does not read.
                await using var raw = await RawConnection.OpenAsync(endpoint.Address, PeerIdentity.Create(), useTls: true);
                var pings = new byte[1000 * (FrameHeader.Size + 8)];
                for (int i = 0; i < 1000; i++) new FrameHeader(FrameKind.Ping, FrameFlags.None, (ulong)i, 8).Write(pings.AsSpan(i * (FrameHeader.Size + 8)));
                try
                {
                    for (int i = 0; i < 200; i++) await raw.SendAsync(pings);
                }
                catch (IOException)
                {
                    // cut off while sending
                }
                return new Outcome(200_000, !await raw.ClosedWithinAsync(TimeSpan.FromSeconds(5)), "");
            }),
            ("1,000 dials that never handshake", async () =>
            {
                // Succeeds if more of them are held at once than MaxHandshakesPerNetwork (32).
                var dials = new List<RawConnection>();
                for (int i = 0; i < 1000; i++) dials.Add(await RawConnection.OpenAsync(endpoint.Address, PeerIdentity.Create(), useTls: true, handshake: false));
                var open = await Task.WhenAll(dials.Select(async d => !await d.ClosedWithinAsync(TimeSpan.FromMilliseconds(500))));
                foreach (var d in dials) await d.DisposeAsync();
                int held = open.Count(o => o);
                return new Outcome(1000, held > 32, $"{held} held open at once");
            }),
            ("storage flood from 128 fresh identities", async () =>
            {
                // 2,560 values of 60 KiB (150 MB, more than the 32 MiB this node may hold) under fresh keys; succeeds if the node holds more than MaxStoredBytes.
                long peak = 0;
                for (int id = 0; id < 128; id++)
                {
                    await using var attacker = new Client();
                    for (int i = 0; i < 20; i++)
                    {
                        var value = new byte[60 * 1024];
                        System.Random.Shared.NextBytes(value);
                        await attacker.StoreAsync(endpoint, new Wire.DhtRecord { Key = $"flood:{id}:{i}", Value = ByteString.CopyFrom(value), ExpirationUnixMs = Later(30) });
                    }
                    peak = Math.Max(peak, node.Dht.StoredBytes);
                }
                return new Outcome(2560, peak > maxStoredBytes, $"the node held at most {peak / 1e6:F0} MB of records (MaxStoredBytes {maxStoredBytes / 1e6:F0} MB)");
            }),
        ];
    }

    private static long Later(int minutes) => (DateTimeOffset.UtcNow + TimeSpan.FromMinutes(minutes)).ToUnixTimeMilliseconds();

    private static Tensors.Tensor Random(int rows)
    {
        var values = new float[rows * Width];
        for (int i = 0; i < values.Length; i++) values[i] = (float)(System.Random.Shared.NextDouble() * 2 - 1);
        return Tensors.Tensor.FromArray(values, new Tensors.TensorShape(rows, Width));
    }

    /// <summary>Runs the attack while the honest client calls (at least <paramref name="honestCalls"/> calls, and until the attack ends), sampling memory.</summary>
    private static async Task<Measurement> MeasureAsync(Client honest, ExpertTarget target, int honestCalls, Func<Task<Outcome>> attack)
    {
        using var stop = new CancellationTokenSource();
        long peakManaged = 0, peakRss = 0;
        var sampling = Task.Run(async () =>
        {
            using var process = Process.GetCurrentProcess();
            while (!stop.IsCancellationRequested)
            {
                process.Refresh();
                peakManaged = Math.Max(peakManaged, GC.GetTotalMemory(false));
                peakRss = Math.Max(peakRss, process.WorkingSet64);
                try
                {
                    await Task.Delay(20, stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        });
        var running = Task.Run(attack);
        var latencies = new List<double>();
        int ok = 0;
        while (latencies.Count < honestCalls || !running.IsCompleted)
        {
            long started = Stopwatch.GetTimestamp();
            bool answered = await honest.ForwardAsync(target);
            latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            if (answered) ok++;
        }
        var outcome = await running;
        await stop.CancelAsync();
        await sampling;
        latencies.Sort();
        return new Measurement(outcome, (double)ok / latencies.Count, latencies[(int)Math.Ceiling(0.99 * latencies.Count) - 1], peakManaged, peakRss);
    }

    private sealed record Outcome(int Ops, bool Succeeded, string Note);

    private sealed record Measurement(Outcome Outcome, double HonestOk, double P99, long PeakManaged, long PeakRss);

    /// <summary>A peer with its own identity and connection (TLS on).</summary>
    private sealed class Client : IAsyncDisposable
    {
        private readonly PeerConnectionPool _pool;
        private static readonly Tensors.Tensor Batch = Random(8);

        public Client()
        {
            _pool = new PeerConnectionPool(Identity, new PeerProtocolOptions(), TimeProvider.System);
            Transport = new TcpPeerTransport(_pool, TimeProvider.System);
            Invoker = new RemoteExpertInvoker(Transport);
        }

        public PeerIdentity Identity { get; } = PeerIdentity.Create();

        public TcpPeerTransport Transport { get; }

        public RemoteExpertInvoker Invoker { get; }

        public async Task<bool> ForwardAsync(ExpertTarget target)
        {
            var result = await Invoker.ForwardAsync(target, Batch, Compression.None, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(2), default);
            result.Value?.Dispose();
            return result.IsOk;
        }

        public async Task<Wire.StoreStatus?> StoreAsync(PeerEndpoint endpoint, Wire.DhtRecord record)
        {
            var request = new Wire.StoreRequest { Sender = new Wire.DhtSender { ClientMode = true } };
            request.Records.Add(record);
            using var response = await Transport.CallAsync(endpoint, PeerRequest.Create(DhtRpcHandler.StoreMethod, null, request.ToByteArray(), DateTimeOffset.UtcNow + TimeSpan.FromSeconds(5)), default);
            return response.IsOk ? response.ParseHeader(Wire.StoreResponse.Parser).Results[0].Status : null;
        }

        public async Task<IReadOnlyList<Wire.DhtRecord>> FindAsync(PeerEndpoint endpoint, string key)
        {
            var request = new Wire.FindRequest { Sender = new Wire.DhtSender { ClientMode = true } };
            request.Queries.Add(new Wire.FindQuery { Target = ByteString.CopyFrom(SHA256.HashData(Encoding.UTF8.GetBytes(key))), Key = key });
            using var response = await Transport.CallAsync(endpoint, PeerRequest.Create(DhtRpcHandler.FindMethod, request, default, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(5)), default);
            return response.IsOk ? response.ParsePayload(Wire.FindResponse.Parser).Results[0].Records.ToArray() : [];
        }

        public async ValueTask DisposeAsync()
        {
            await _pool.DisposeAsync();
            Identity.Dispose();
        }
    }
}
