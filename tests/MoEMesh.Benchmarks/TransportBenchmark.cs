using System.Diagnostics;
using System.Net;
using MoEMesh.Node.Hosting;
using MoEMesh.Protocol;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;

namespace MoEMesh.Benchmarks;

/// <summary>
/// Round trips over MoEMesh's peer transport and over a raw TCP echo, side by side in one run, for
/// payloads of 64 B, 256 KiB and 1 MiB with 1 and 16 concurrent callers, TLS off and on. Each case is
/// measured in several short rounds that alternate between the two transports.
/// </summary>
public static class TransportBenchmark
{
    private const int Rounds = 6;

    public static async Task<int> RunAsync(TimeSpan roundLength)
    {
        Console.WriteLine($"peer transport vs raw TCP echo on loopback; {Environment.ProcessorCount} cores; {Rounds} alternating rounds of {roundLength.TotalMilliseconds:F0} ms per case");
        Console.WriteLine("MoEMesh multiplexes all callers on one connection; raw TCP uses one connection per caller.");
        Console.WriteLine();
        Console.WriteLine($"{"tls",-4} {"payload",8} {"calls",6} | {"moemesh calls/s",15} {"MB/s",8} {"p50 ms",8} {"p99 ms",8} | {"raw calls/s",12} {"MB/s",8} {"p50 ms",8} {"p99 ms",8} | {"thru ratio",10} {"p50 ratio",9}");
        var summary = new Dictionary<bool, (double Throughput, double P50)>();
        foreach (bool tls in new[] { false, true })
        {
            using var serverIdentity = PeerIdentity.Create();
            using var clientIdentity = PeerIdentity.Create();
            var options = new PeerProtocolOptions { UseTls = tls };
            var server = new PeerServer(serverIdentity, EchoRouter(), options, TimeProvider.System);
            await using var listener = PeerListener.Start(server, new IPEndPoint(IPAddress.Loopback, 0));
            await using var pool = new PeerConnectionPool(clientIdentity, options, TimeProvider.System);
            var transport = new TcpPeerTransport(pool, TimeProvider.System);
            var endpoint = new PeerEndpoint(listener.Address, serverIdentity.PeerId);
            await using var raw = new RawTcpEcho(tls ? serverIdentity : null);

            foreach (int size in new[] { 64, 256 << 10, 1 << 20 })
            {
                var payload = new byte[size];
                new Random(size).NextBytes(payload);
                foreach (int callers in new[] { 1, 16 })
                {
                    var rawCallers = await Task.WhenAll(Enumerable.Range(0, callers).Select(_ => raw.ConnectAsync(tls ? clientIdentity : null)));
                    Func<Task> meshCall = async () =>
                    {
                        using var response = await transport.CallAsync(endpoint,
                            new PeerRequest("echo", default, payload, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(10)), CancellationToken.None);
                        if (!response.IsOk || response.Payload.Length != size) throw new InvalidOperationException($"echo failed: {response}");
                    };
                    var mesh = new Samples();
                    var baseline = new Samples();
                    await RunRoundAsync(Enumerable.Repeat(meshCall, callers).ToArray(), TimeSpan.FromMilliseconds(200), new Samples());
                    await RunRoundAsync(rawCallers.Select(c => (Func<Task>)(() => c(payload))).ToArray(), TimeSpan.FromMilliseconds(200), new Samples());
                    for (int round = 0; round < Rounds; round++)
                    {
                        await RunRoundAsync(Enumerable.Repeat(meshCall, callers).ToArray(), roundLength, mesh);
                        await RunRoundAsync(rawCallers.Select(c => (Func<Task>)(() => c(payload))).ToArray(), roundLength, baseline);
                    }
                    double throughputRatio = mesh.CallsPerSecond / baseline.CallsPerSecond;
                    double p50Ratio = mesh.Percentile(0.5) / baseline.Percentile(0.5);
                    Console.WriteLine($"{(tls ? "on" : "off"),-4} {Size(size),8} {callers,6} | {mesh.CallsPerSecond,15:F0} {mesh.CallsPerSecond * size / 1e6,8:F1} {mesh.Percentile(0.5),8:F3} {mesh.Percentile(0.99),8:F3} | "
                        + $"{baseline.CallsPerSecond,12:F0} {baseline.CallsPerSecond * size / 1e6,8:F1} {baseline.Percentile(0.5),8:F3} {baseline.Percentile(0.99),8:F3} | {throughputRatio,10:F2} {p50Ratio,9:F2}");
                    if (size == 1 << 20 && callers == 1) summary[tls] = (mesh.CallsPerSecond * size / 1e6, mesh.Percentile(0.5));
                    if (size == 1 << 20 && callers == 1 && !tls)
                        Goal = (mesh.CallsPerSecond * size / 1e6, baseline.CallsPerSecond * size / 1e6, mesh.Percentile(0.5), baseline.Percentile(0.5));
                }
            }
        }
        await CompareListenersAsync(roundLength);
        Console.WriteLine();
        Console.WriteLine($"TLS cost at 1 MiB, 1 caller: throughput {summary[true].Throughput:F0} MB/s with TLS vs {summary[false].Throughput:F0} without ({summary[true].Throughput / summary[false].Throughput:F2}x); p50 {summary[true].P50:F3} ms vs {summary[false].P50:F3} ms");
        double throughput = Goal.MeshMBps / Goal.RawMBps, p50 = Goal.MeshP50 / Goal.RawP50;
        Goals.Report("transport", "1 MiB round trips, TLS off, 1 caller: throughput", Goals.Of(Goal.MeshMBps, "MB/s"), $"raw TCP echo, {Goals.Of(Goal.RawMBps, "MB/s")}", throughput, ">= 0.70", throughput >= 0.7);
        Goals.Report("transport", "1 MiB round trips, TLS off, 1 caller: p50", Goals.Of(Goal.MeshP50, "ms", "F3"), $"raw TCP echo, {Goals.Of(Goal.RawP50, "ms", "F3")}", p50, "<= 1.5", p50 <= 1.5);
        return 0;
    }

    private static (double MeshMBps, double RawMBps, double MeshP50, double RawP50) Goal;

    /// <summary>Answers "echo" with the request's own payload buffer (ownership taken, no copy), as the raw echo does.</summary>
    private static PeerRouter EchoRouter() => new PeerRouter(TimeProvider.System).Map("echo", (request, _) =>
    {
        var bytes = request.TakePayload();
        return ValueTask.FromResult(PeerResponse.Ok(payload: bytes.Memory, owned: bytes));
    });

    /// <summary>1 MiB round trips, TLS off, one caller: socket listener, Kestrel endpoint and raw TCP, interleaved.</summary>
    private static async Task CompareListenersAsync(TimeSpan roundLength)
    {
        using var serverIdentity = PeerIdentity.Create();
        using var clientIdentity = PeerIdentity.Create();
        var options = new PeerProtocolOptions { UseTls = false };
        var server = new PeerServer(serverIdentity, EchoRouter(), options, TimeProvider.System);
        await using var sockets = PeerListener.Start(server, new IPEndPoint(IPAddress.Loopback, 0));
        await using var kestrel = await KestrelPeerListener.StartAsync(server, new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        await using var pool = new PeerConnectionPool(clientIdentity, options, TimeProvider.System);
        var transport = new TcpPeerTransport(pool, TimeProvider.System);
        await using var raw = new RawTcpEcho(null);
        var payload = new byte[1 << 20];
        var rawCall = await raw.ConnectAsync(null);
        Func<Task> Mesh(PeerEndpoint endpoint) => async () =>
        {
            using var response = await transport.CallAsync(endpoint, new PeerRequest("echo", default, payload, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(10)), CancellationToken.None);
            if (!response.IsOk) throw new InvalidOperationException($"echo failed: {response}");
        };
        var cases = new (string Name, Func<Task> Call, Samples Samples)[]
        {
            ("socket listener (default)", Mesh(new PeerEndpoint(sockets.Address)), new Samples()),
            ("kestrel endpoint", Mesh(new PeerEndpoint(kestrel.Address)), new Samples()),
            ("raw tcp echo", () => rawCall(payload), new Samples()),
        };
        foreach (var c in cases) await RunRoundAsync([c.Call], TimeSpan.FromMilliseconds(200), new Samples());
        for (int round = 0; round < Rounds; round++)
            foreach (var c in cases) await RunRoundAsync([c.Call], roundLength, c.Samples);
        Console.WriteLine();
        Console.WriteLine("Listeners at 1 MiB, TLS off, 1 caller:");
        foreach (var c in cases)
            Console.WriteLine($"  {c.Name,-26} {c.Samples.CallsPerSecond * payload.Length / 1e6,8:F0} MB/s  p50 {c.Samples.Percentile(0.5),7:F3} ms  ({c.Samples.CallsPerSecond / cases[2].Samples.CallsPerSecond:F2} of raw)");
    }

    private static string Size(int bytes) => bytes >= 1 << 20 ? $"{bytes >> 20} MiB" : bytes >= 1 << 10 ? $"{bytes >> 10} KiB" : $"{bytes} B";

    /// <summary>Runs each caller in a loop for <paramref name="length"/>, recording every call's latency.</summary>
    internal static async Task RunRoundAsync(Func<Task>[] callers, TimeSpan length, Samples samples)
    {
        var start = Stopwatch.GetTimestamp();
        var loops = callers.Select(async call =>
        {
            var latencies = new List<double>();
            while (Stopwatch.GetElapsedTime(start) < length)
            {
                long t = Stopwatch.GetTimestamp();
                await call();
                latencies.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            }
            return latencies;
        }).ToArray();
        var all = await Task.WhenAll(loops);
        samples.Add(all.SelectMany(l => l), Stopwatch.GetElapsedTime(start).TotalSeconds);
    }

    internal sealed class Samples
    {
        private readonly List<double> _latencies = [];
        private double _seconds;

        public double CallsPerSecond => _latencies.Count / _seconds;

        public void Add(IEnumerable<double> latencies, double seconds)
        {
            _latencies.AddRange(latencies);
            _seconds += seconds;
        }

        public double Percentile(double p)
        {
            var sorted = _latencies.Order().ToArray();
            return sorted[(int)Math.Min(sorted.Length - 1, p * sorted.Length)];
        }
    }
}
