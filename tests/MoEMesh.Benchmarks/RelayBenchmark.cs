using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using MoEMesh.Node.Hosting;
using MoEMesh.Protocol;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;
using MoEMesh.Protocol.Wire;
using MoEMesh.Routing.Invocation;
using MoEMesh.Tensors;
using MoEMesh.Testing;
using static MoEMesh.Benchmarks.TransportBenchmark;

namespace MoEMesh.Benchmarks;

/// <summary>
/// Expert calls (<c>expert.forward</c> of an identity expert, so the figures are the path's, not a GEMM's)
/// to a host reached directly and to one behind a NAT reached through a relay, side by side in one run, on
/// loopback: 64 KiB and 1 MiB of activations, one caller, TLS on (the default) and off. Both hosts are real
/// nodes in this process; the relayed one announces an address nobody listens on, so it finds itself
/// unreachable and takes the relay node as its relay, as at home. The relay's byte limit is lifted (it
/// would measure the setting, not the relay).
/// </summary>
public static class RelayBenchmark
{
    private const int Rounds = 6, Width = 4096;

    public static async Task<int> RunAsync(TimeSpan roundLength)
    {
        Console.WriteLine($"expert calls through a relay vs direct on loopback; {Environment.ProcessorCount} cores; {Rounds} alternating rounds of {roundLength.TotalMilliseconds:F0} ms per case; identity expert of width {Width}");
        Console.WriteLine();
        Console.WriteLine($"{"tls",-4} {"payload",8} | {"relayed calls/s",15} {"MB/s",8} {"p50 ms",8} {"p99 ms",8} | {"direct calls/s",14} {"MB/s",8} {"p50 ms",8} {"p99 ms",8} | {"thru ratio",10} {"p50 ratio",9}");
        var folder = Directory.CreateTempSubdirectory("moemesh-relay-bench-").FullName;
        try
        {
            foreach (bool tls in new[] { true, false }) await CompareAsync(folder, tls, roundLength);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
        return 0;
    }

    private static async Task CompareAsync(string folder, bool tls, TimeSpan roundLength)
    {
        NodeOptions Options(string name)
        {
            var options = LoopbackNode.Options(folder, $"{name}-{tls}");
            options.UseTls = tls;
            options.Relay.BytesPerSecond = 1L << 40;
            return options;
        }
        await using var relay = await LoopbackNode.StartAsync(Options("relay"));
        var relayNode = relay.Services.GetRequiredService<MeshNode>();
        var seed = new PeerEndpoint(relayNode.ListenAddress, relayNode.PeerId).ToString();
        NodeOptions Host(string name, string? announce)
        {
            var options = Options(name);
            options.InitialPeers = [seed];
            options.Experts = [new ExpertHostingOptions { Type = "identity", Uid = "relay.0", HiddenDim = Width }];
            if (announce is not null) options.AnnounceAddresses = [announce];
            options.Relay.Serve = false; // so the relayed host's relay is the relay node, run after run
            return options;
        }
        await using var direct = await LoopbackNode.StartAsync(Host("direct", null));
        await using var behindNat = await LoopbackNode.StartAsync(Host("nat", $"127.0.0.1:{LoopbackPorts.Unused()}"));
        var directNode = direct.Services.GetRequiredService<MeshNode>();
        var natNode = behindNat.Services.GetRequiredService<MeshNode>();
        if (natNode.Relays.Count == 0) throw new InvalidOperationException($"the host behind the NAT took no relay (reachability {natNode.Reachability.State})");

        using var client = PeerIdentity.Create();
        await using var pool = new PeerConnectionPool(client, new PeerProtocolOptions { UseTls = tls }, TimeProvider.System);
        var invoker = new RemoteExpertInvoker(new TcpPeerTransport(pool, TimeProvider.System));
        var uid = ExpertUid.Parse("relay.0");
        var directTarget = new ExpertTarget(uid, new PeerEndpoint(directNode.ListenAddress, directNode.PeerId));
        var relayedTarget = new ExpertTarget(uid, new PeerEndpoint(natNode.Relays[0].Address.ThroughRelay, natNode.PeerId));
        foreach (int bytes in new[] { 64 << 10, 1 << 20 })
        {
            int rows = bytes / (Width * sizeof(float));
            using var input = Tensor.FromArray(Enumerable.Range(0, rows * Width).Select(i => (float)(i % 97) / 97f).ToArray(), new TensorShape(rows, Width));
            Func<Task> Call(ExpertTarget target) => async () =>
            {
                var result = await invoker.ForwardAsync(target, input, Compression.None, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(10), CancellationToken.None);
                using var output = result.Value ?? throw new InvalidOperationException($"forward to {target.Host} failed: {result}");
            };
            var relayed = new Samples();
            var baseline = new Samples();
            await RunRoundAsync([Call(relayedTarget)], TimeSpan.FromMilliseconds(300), new Samples());
            await RunRoundAsync([Call(directTarget)], TimeSpan.FromMilliseconds(300), new Samples());
            for (int round = 0; round < Rounds; round++)
            {
                await RunRoundAsync([Call(relayedTarget)], roundLength, relayed);
                await RunRoundAsync([Call(directTarget)], roundLength, baseline);
            }
            double throughput = relayed.CallsPerSecond / baseline.CallsPerSecond;
            double p50 = relayed.Percentile(0.5), directP50 = baseline.Percentile(0.5);
            string size = bytes >= 1 << 20 ? "1 MiB" : "64 KiB";
            Console.WriteLine($"{(tls ? "on" : "off"),-4} {size,8} | {relayed.CallsPerSecond,15:F0} {relayed.CallsPerSecond * bytes / 1e6,8:F1} {p50,8:F3} {relayed.Percentile(0.99),8:F3} | "
                + $"{baseline.CallsPerSecond,14:F0} {baseline.CallsPerSecond * bytes / 1e6,8:F1} {directP50,8:F3} {baseline.Percentile(0.99),8:F3} | {throughput,10:F2} {p50 / directP50,9:F2}");
            bool thruMet = throughput >= 0.5, p50Met = p50 <= 2 * directP50 + 1;
            Goals.Report("relay", $"{size} expert calls, TLS {(tls ? "on" : "off")}: throughput through a relay", Goals.Of(relayed.CallsPerSecond * bytes / 1e6, "MB/s", "F1"),
                $"direct, {Goals.Of(baseline.CallsPerSecond * bytes / 1e6, "MB/s", "F1")}", throughput, ">= 0.50", thruMet);
            Goals.Report("relay", $"{size} expert calls, TLS {(tls ? "on" : "off")}: p50 through a relay", Goals.Of(p50, "ms", "F3"),
                $"direct, {Goals.Of(directP50, "ms", "F3")}", p50 / directP50, $"<= 2x + 1 ms ({2 * directP50 + 1:F3} ms)", p50Met);
        }
    }

}
