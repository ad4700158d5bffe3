using MoEMesh.Node.Hosting;
using MoEMesh.Protocol;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Transport;
using MoEMesh.Protocol.Wire;
using MoEMesh.Routing.Invocation;
using MoEMesh.Testing.Fuzzing;
using MoEMesh.Tensors;

namespace MoEMesh.Node.Tests;

/// <summary>
/// A node serving experts (open to training, so the fuzzer reaches the optimizer too) is sent thousands of
/// random and mutated peer requests and HTTP requests: it answers each with a status, none a crash, a
/// well-formed call succeeds afterwards with finite outputs, and its managed memory returns to its level.
/// </summary>
[Collection(SwarmsOfTheirOwn.Name)]
public sealed class FuzzingTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private const int Dim = 8;
    private static readonly string[] Uids = ["ffn.0.0", "ffn.0.1"];
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task EveryPeerMethodAndHttpEndpoint_UnderRandomAndMutatedRequests_AnswersWithoutACrash_AndServesOn()
    {
        var options = TestNode.Configure(_folder.Sub("n"), Uids.Select(u => TestNode.Ffn(u, Dim)).ToArray());
        options.Serving.OpenTraining = true;
        await using var node = await TestNode.StartAsync(options, 61);
        using var caller = PeerIdentity.FromSeed(62);
        await using var pool = new PeerConnectionPool(caller, new PeerProtocolOptions { UseTls = false }, TimeProvider.System);
        var transport = new TcpPeerTransport(pool, TimeProvider.System);
        using var http = new HttpClient { BaseAddress = node.Http, Timeout = TimeSpan.FromMinutes(1) };
        var peerFuzzer = new PeerFuzzer(transport, node.Endpoint, TimeProvider.System, Uids, Dim);
        var httpFuzzer = new HttpFuzzer(http, Uids);

        // A warm-up round first, so what the fuzzing costs is measured against a node that has served it once.
        await peerFuzzer.RunAsync(300, seed: 1, default);
        await httpFuzzer.RunAsync(100, seed: 1, default);
        long before = SettledMemory();

        var peer = await peerFuzzer.RunAsync(3000, seed: 2, default);
        var web = await httpFuzzer.RunAsync(1000, seed: 2, default);
        output.WriteLine($"peer methods: {peer}");
        output.WriteLine($"HTTP: {web}");
        Assert.True(peer.CrashCount == 0, peer.ToString());
        Assert.True(web.CrashCount == 0, web.ToString());
        // The fuzzer reached the handlers, not just the parser: some requests were served, many refused.
        Assert.True(peer.Outcomes.GetValueOrDefault("Ok") > 100, peer.ToString());
        Assert.True(peer.Outcomes.GetValueOrDefault("InvalidArgument") > 100, peer.ToString());
        Assert.True(web.Outcomes.GetValueOrDefault("200") > 100, web.ToString());
        Assert.True(web.Outcomes.GetValueOrDefault("400") > 10, web.ToString());

        // A well-formed call succeeds, and the experts the fuzzer trained still compute finite values.
        var invoker = new RemoteExpertInvoker(transport);
        foreach (var uid in Uids)
        {
            using var input = Tensor.FromArray(Enumerable.Range(0, 4 * Dim).Select(i => i / 10f).ToArray(), new TensorShape(4, Dim));
            var answer = await invoker.ForwardAsync(new ExpertTarget(ExpertUid.Parse(uid), node.Endpoint), input, Compression.None, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(30), default);
            Assert.True(answer.IsOk, answer.ToString());
            using var result = answer.Value!;
            Assert.All(result.ToArray(), v => Assert.True(float.IsFinite(v), $"{uid} answers {v}"));
        }
        using var status = await http.GetAsync("/v1/status");
        Assert.True(status.IsSuccessStatusCode);

        long after = SettledMemory();
        output.WriteLine($"managed memory: {before / 1e6:F1} MB before the fuzzing, {after / 1e6:F1} MB after");
        Assert.True(after < before * 1.10 + (8 << 20), $"managed memory grew from {before / 1e6:F1} MB to {after / 1e6:F1} MB");
    }

    /// <summary>Managed memory after full collections (what the process holds on to, not what awaits collection).</summary>
    private static long SettledMemory()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
