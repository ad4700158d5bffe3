using System.Net;
using System.Net.Sockets;
using MoEMesh.Node.Hosting;
using MoEMesh.Node.Reachability;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Routing;
using MoEMesh.Routing.Gating;
using MoEMesh.Routing.Models;
using MoEMesh.Tensors.Optimizers;
using MoEMesh.Testing;

namespace MoEMesh.Node.Tests;

/// <summary>
/// A host nobody can dial (its announced address refuses every connection, as behind a NAT) finds that out
/// through dial-back, becomes a DHT client, takes a relay and announces through it; a gating node trains a
/// model against its experts with exactly the losses of a run against the same host reached directly, and
/// when its relay dies mid-run the host moves to another and training goes on.
/// </summary>
[Collection(SwarmsOfTheirOwn.Name)]
public sealed class RelayedHostTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private const int Dim = 8, Classes = 3, Steps = 24;
    private static readonly string[] Uids = ["nat.0.0", "nat.0.1"];
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task AnUnreachableHost_IsReachedThroughARelay_AndTrainsExactlyAsIfDirect_EvenWhenItsRelayDies()
    {
        var direct = await TrainAsync(behindNat: false);
        var relayed = await TrainAsync(behindNat: true);
        output.WriteLine($"losses direct {string.Join(", ", direct.Take(4))} ...; relayed {string.Join(", ", relayed.Take(4))} ...");
        Assert.Equal(direct, relayed);
    }

    /// <summary>Trains <see cref="Steps"/> steps on a fresh swarm; behind a NAT, the host's relay is stopped halfway.</summary>
    private async Task<float[]> TrainAsync(bool behindNat)
    {
        string run = behindNat ? "nat" : "direct";
        NodeOptions Options(string name, params ExpertHostingOptions[] experts)
        {
            var options = TestNode.Configure(_folder.Sub($"{run}-{name}"), experts);
            options.Routing = TestNode.Patient();
            options.UpdatePeriod = TimeSpan.FromSeconds(5);
            return options;
        }
        var relays = new List<TestNode> { await TestNode.StartAsync(Options("relay1"), 91) };
        relays.Add(await TestNode.StartAsync(Options("relay2"), 92, relays[0]));
        var gatingOptions = Options("gating");
        gatingOptions.Relay.Serve = false;
        await using var gating = await TestNode.StartAsync(gatingOptions, 93, relays[0]);
        var hostOptions = Options("host", [.. Uids.Select(u => new ExpertHostingOptions { Type = "ffn", Uid = u, HiddenDim = Dim, Optimizer = "adam", LearningRate = 3e-3f })]);
        hostOptions.Serving.OpenTraining = true;
        if (behindNat) hostOptions.AnnounceAddresses = [$"127.0.0.1:{LoopbackPorts.Unused()}"];
        await using var host = await TestNode.StartAsync(hostOptions, 94, relays[0]);
        try
        {
            await TestNode.WaitForExpertsAsync(gating.Node, Uids);
            if (behindNat)
            {
                Assert.Equal(Reach.Unreachable, host.Node.Reachability.State);
                Assert.All(host.Node.Reachability.Results, r => Assert.False(r.Reached));
                Assert.True(host.Node.Dht.IsClient, "an unreachable host still holds DHT records for others");
                Assert.Single(host.Node.Relays);
                await WaitForAddressAsync(gating.Node, host.Node.Relays[0].Address.ThroughRelay);
            }
            else
            {
                Assert.Equal(Reach.Reachable, host.Node.Reachability.State);
                Assert.False(host.Node.Dht.IsClient);
                Assert.Empty(host.Node.Relays);
            }

            var layer = new LayerSpec("nat", [1, 2], "ffn", Dim, K: 2, RouterLosses: new RouterLossWeights());
            var spec = new ModelSpec(new TrunkSpec(256, Dim), [layer], new HeadSpec([.. Enumerable.Range(0, Classes).Select(c => c.ToString())]), new DataColumns());
            var model = new MoEModel(spec, ModelWeights.Initialize(spec, seed: 2), gating.Node.CreateMixtureOfExperts);
            var optimizer = new Adam(model.Parameters, new LearningRateSchedule(0.01f));
            var random = new Random(3);
            var losses = new List<float>();
            for (int step = 0; step < Steps; step++)
            {
                if (behindNat && step == Steps / 2)
                {
                    // The relay in use dies; the host reserves at the other one and announces the new address.
                    var used = host.Node.Relays[0];
                    var dying = relays.Single(r => r.Node.PeerId == used.PeerId);
                    relays.Remove(dying);
                    await dying.DisposeAsync();
                    await WaitForAddressAsync(gating.Node, relays[0].Node.ListenAddress.ThroughRelay);
                    Assert.Equal(relays[0].Node.PeerId, host.Node.Relays.Single().PeerId);
                }
                var (texts, labels) = Batch(random, 16);
                var result = await model.TrainAsync(texts, labels, optimizer, default);
                Assert.Equal(0, result.FellBack);
                Assert.Equal(0, result.BackwardFailures);
                losses.Add(result.Loss);
            }
            if (behindNat) Assert.True(relays[0].Node.Relaying!.CircuitsSpliced > 0, "the second relay spliced no connection");
            return [.. losses];
        }
        finally
        {
            foreach (var relay in relays) await relay.DisposeAsync();
        }
    }

    /// <summary>Waits (a minute at most) until <paramref name="gating"/> finds every uid announced at <paramref name="address"/>.</summary>
    private static async Task WaitForAddressAsync(MeshNode gating, PeerAddress address)
    {
        var parsed = Uids.Select(ExpertUid.Parse).ToArray();
        for (var until = DateTime.UtcNow.AddMinutes(1); ; await Task.Delay(200))
        {
            var found = await gating.Directory.FindAsync(parsed, default);
            if (parsed.All(u => found[u].Any(h => h.Addresses[0] == address))) return;
            Assert.True(DateTime.UtcNow < until, $"the experts are not announced at {address} after a minute: {string.Join("; ", parsed.SelectMany(u => found[u]).Select(h => string.Join(",", h.Addresses)))}");
        }
    }


    private static (string[] Texts, int[] Labels) Batch(Random random, int size)
    {
        var labels = Enumerable.Range(0, size).Select(_ => random.Next(Classes)).ToArray();
        var texts = labels.Select(c => string.Join(' ', Enumerable.Range(0, 4).Select(_ => $"c{c}t{random.Next(8)}").Append($"noise{random.Next(20)}"))).ToArray();
        return (texts, labels);
    }
}
