using MoEMesh.Experts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MoEMesh.Node.Hosting;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Routing;

namespace MoEMesh.Node.Tests;

/// <summary>A node started in-process on loopback (real sockets, free ports), with a temporary checkpoint folder.</summary>
internal sealed class TestNode : IAsyncDisposable
{
    private TestNode(WebApplication app, NodeOptions options)
    {
        App = app;
        Options = options;
        Node = app.Services.GetRequiredService<MeshNode>();
    }

    public WebApplication App { get; }

    public NodeOptions Options { get; }

    public MeshNode Node { get; }

    public PeerEndpoint Endpoint => new(Node.ListenAddress, Node.PeerId);

    public Uri Http => new(App.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

    /// <summary>Default test options: loopback, free ports, TLS off, small experts, fresh checkpoint and model folders.</summary>
    public static NodeOptions Configure(string checkpoints, params ExpertHostingOptions[] experts) => new()
    {
        Listen = "127.0.0.1:0",
        HttpListen = "127.0.0.1:0",
        UseTls = false,
        CheckpointDirectory = checkpoints,
        ModelDirectory = checkpoints + "-models",
        Experts = [.. experts],
    };

    /// <summary>
    /// Routing limits for tests about what is computed, not how fast: every live expert gets the whole 20 s
    /// deadline (no grace cut), a lookup 10 s, so what a test sees does not depend on the machine's load.
    /// </summary>
    public static RoutingOptions Patient() =>
        new() { ForwardTimeout = TimeSpan.FromSeconds(20), DiscoveryTimeout = TimeSpan.FromSeconds(10), BackwardTimeout = TimeSpan.FromSeconds(20), GraceAfterKMin = TimeSpan.FromSeconds(20) };

    /// <summary>The expert a node builds for <paramref name="uid"/> (same spec and seed, so the same weights), outside any node.</summary>
    public static IExpert Twin(string uid, int hidden = 8) => ExpertRegistry.CreateDefault().Create(new ExpertSpec("ffn", hidden, null, ExpertSpec.SeedOf(uid)));

    public static ExpertHostingOptions Ffn(string uid, int hidden = 8) => new() { Type = "ffn", Uid = uid, HiddenDim = hidden, Optimizer = "sgd", LearningRate = 0.1f };

    public static Task<TestNode> StartAsync(NodeOptions options, int seed, params TestNode[] join) => StartAsync(options, seed, null, join);

    /// <summary>A node with its own expert registry (test expert types).</summary>
    public static Task<TestNode> StartAsync(NodeOptions options, int seed, ExpertRegistry? registry, params TestNode[] join) => StartAsync(options, seed, registry, null, join);

    /// <summary>A node with its own expert registry and clock (a skewed one, say).</summary>
    public static async Task<TestNode> StartAsync(NodeOptions options, int seed, ExpertRegistry? registry, TimeProvider? time, params TestNode[] join)
    {
        if (join.Length > 0) options.InitialPeers = join.Select(j => j.Endpoint.ToString()).ToList();
        var app = NodeHost.Build(options, PeerIdentity.FromSeed(seed), l => l.ClearProviders(), registry, time);
        await app.StartAsync();
        return new TestNode(app, options);
    }

    /// <summary>
    /// Waits until <paramref name="asking"/> finds a host of every uid in the DHT, asking again past any lookup that
    /// came back empty (on a loaded machine one may time out), for at most a minute; fails naming the uids not found.
    /// </summary>
    public static async Task WaitForExpertsAsync(MeshNode asking, params string[] uids)
    {
        var parsed = uids.Select(Protocol.Addressing.ExpertUid.Parse).ToArray();
        for (var until = DateTime.UtcNow.AddMinutes(1); ; await Task.Delay(200))
        {
            var found = await asking.Directory.FindAsync(parsed, default);
            var missing = parsed.Where(u => found[u].Count == 0).Select(u => u.Value).ToArray();
            if (missing.Length == 0) return;
            Assert.True(DateTime.UtcNow < until, $"{asking.PeerId} finds no host of {string.Join(", ", missing)} after a minute");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>A temporary folder removed afterwards.</summary>
internal sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("moemesh-node-").FullName;

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
