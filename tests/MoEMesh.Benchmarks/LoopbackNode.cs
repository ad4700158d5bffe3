using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using MoEMesh.Experts;
using MoEMesh.Node.Hosting;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Benchmarks;

/// <summary>The nodes the scenario benchmarks start in their own process: loopback, free ports, TLS off, no log.</summary>
internal static class LoopbackNode
{
    /// <summary>Options of a node whose checkpoints go to <c>folder/name</c> and models to <c>folder/name-models</c>.</summary>
    public static NodeOptions Options(string folder, string name) => new()
    {
        Listen = "127.0.0.1:0", HttpListen = "127.0.0.1:0", UseTls = false,
        CheckpointDirectory = Path.Combine(folder, name), ModelDirectory = Path.Combine(folder, name + "-models"),
    };

    /// <summary>Builds and starts a node with a fresh identity; a node whose start fails is disposed.</summary>
    public static async Task<WebApplication> StartAsync(NodeOptions options, ExpertRegistry? registry = null)
    {
        var app = NodeHost.Build(options, PeerIdentity.Create(), l => l.ClearProviders(), registry);
        try
        {
            await app.StartAsync();
            return app;
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }
}
