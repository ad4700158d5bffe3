using System.Net;
using System.Net.Sockets;
using MoEMesh.Node.Hosting;
using MoEMesh.Protocol.Addressing;

namespace MoEMesh.Node.Tests;

/// <summary>
/// Nodes started at the same moment with the same initial peers form one network (Hivemind users saw such
/// nodes split into two networks, or fail to bootstrap): every round, four nodes each given all four
/// addresses, their own included, are started at once; each then finds every other node's expert.
/// </summary>
[Collection(SwarmsOfTheirOwn.Name)]
public sealed class OneNetworkTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>Ports free now (bound and released by the system), for nodes whose addresses must be known before they start.</summary>
    private static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToArray();
        foreach (var l in listeners) l.Start();
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        foreach (var l in listeners) l.Stop();
        return ports;
    }

    [Fact]
    public async Task FourNodesStartedAtOnce_WithTheSameInitialPeers_FormOneNetwork_EveryTime()
    {
        for (int round = 0; round < 3; round++)
        {
            var ports = FreePorts(4);
            var addresses = ports.Select(p => $"127.0.0.1:{p}").ToList();
            var options = ports.Select((port, i) =>
            {
                var o = TestNode.Configure(_folder.Sub($"r{round}-n{i}"), TestNode.Ffn($"ffn.{round}.{i}"));
                o.Listen = addresses[i];
                o.InitialPeers = [.. addresses];
                return o;
            }).ToArray();
            var nodes = await Task.WhenAll(options.Select((o, i) => TestNode.StartAsync(o, 200 + 10 * round + i)));
            try
            {
                var uids = Enumerable.Range(0, 4).Select(i => ExpertUid.Parse($"ffn.{round}.{i}")).ToArray();
                foreach (var node in nodes)
                {
                    // Each node finds every expert, its own and the other three nodes', within a bounded wait.
                    var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
                    while (true)
                    {
                        var found = await node.Node.Directory.FindAsync(uids, default);
                        var hosts = uids.Select(u => found[u].SingleOrDefault()?.Host).ToArray();
                        if (hosts.SequenceEqual(nodes.Select(n => (Protocol.Identity.PeerId?)n.Node.PeerId))) break;
                        Assert.True(DateTime.UtcNow < until, $"round {round}: node {node.Node.PeerId} sees hosts [{string.Join(", ", hosts)}]");
                        await Task.Delay(200);
                    }
                }
            }
            finally
            {
                foreach (var node in nodes) await node.DisposeAsync();
            }
        }
    }
}
