using MoEMesh.Node.Hosting;
using MoEMesh.Routing;
using MoEMesh.Routing.Gating;
using MoEMesh.Tensors;
using MoEMesh.Testing;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Node.Tests;

/// <summary>
/// Real nodes in one process, over real sockets, where time or the network is not what it should be: clocks
/// two seconds apart, and a node whose every peer went away and came back.
/// </summary>
[Collection(SwarmsOfTheirOwn.Name)]
public sealed class ReachAgainTests : IDisposable
{
    private const int Dim = 8;
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task NodesWhoseClocksAreTwoSecondsApart_FindEachOthersExperts_AndAnswerEveryCall()
    {
        NodeOptions Options(string name, params ExpertHostingOptions[] experts)
        {
            var options = TestNode.Configure(_folder.Sub(name), experts);
            options.UseTls = true;
            options.Routing = TestNode.Patient();
            return options;
        }
        await using var behind = await TestNode.StartAsync(Options("behind", TestNode.Ffn("skew.0.0", Dim)), 81, null, new SkewedTimeProvider(TimeSpan.FromSeconds(-2)));
        await using var ahead = await TestNode.StartAsync(Options("ahead", TestNode.Ffn("skew.0.1", Dim)), 82, null, new SkewedTimeProvider(TimeSpan.FromSeconds(2)), behind);
        await using var gating = await TestNode.StartAsync(Options("gating"), 83, null, new SkewedTimeProvider(TimeSpan.FromSeconds(2)), behind);

        // Records signed on one clock are taken on the other, both ways.
        await TestNode.WaitForExpertsAsync(behind.Node, "skew.0.0", "skew.0.1");
        await TestNode.WaitForExpertsAsync(ahead.Node, "skew.0.0", "skew.0.1");
        await TestNode.WaitForExpertsAsync(gating.Node, "skew.0.0", "skew.0.1");
        // Both hosts answer over TLS, none falls back. (That a call's deadline is the time its caller left it, whatever the
        // other clock says, is shown on manual clocks by TransportTests.ClocksSecondsApart_...)
        var layer = gating.Node.CreateMixtureOfExperts(new GatingNetwork(new ExpertGrid("skew", 1, 2), Dim, seed: 5), new MixtureOfExpertsOptions { K = 2, RouterLosses = null });
        var random = new Random(8);
        using var input = Tensor.FromArray(Enumerable.Range(0, 6 * Dim).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray(), new TensorShape(6, Dim));
        using var step = await layer.ForwardAsync(input, default);
        Assert.All(step.ExpertsPerSample, n => Assert.Equal(2, n));
        Assert.DoesNotContain(true, step.Experts.FellBack);
    }

    [Fact]
    public async Task ANodeWhosePeersAllWentAway_FindsThemAgainWhenTheyAreBack_AndAnnouncesItsExpertToThem()
    {
        NodeOptions Options(string name, string listen, params ExpertHostingOptions[] experts)
        {
            var options = TestNode.Configure(_folder.Sub(name), experts);
            options.Listen = listen;
            options.UpdatePeriod = TimeSpan.FromSeconds(1);
            options.Dht.MaintenanceInterval = TimeSpan.FromSeconds(1);
            return options;
        }
        // The first node of its swarm: it has no initial peers to go back to.
        await using var first = await TestNode.StartAsync(Options("first", "127.0.0.1:0", TestNode.Ffn("back.0.0", Dim)), 84);
        var other = await TestNode.StartAsync(Options("other", "127.0.0.1:0", TestNode.Ffn("back.0.1", Dim)), 85, first);
        string otherListen = other.Node.ListenAddress.ToString();
        await TestNode.WaitForExpertsAsync(other.Node, "back.0.0", "back.0.1");

        // Its only peer goes away; announcing to it fails, and the node is left knowing no one.
        await other.DisposeAsync();
        for (var until = DateTime.UtcNow.AddMinutes(1); first.Node.Dht.RoutingTableSize > 0; await Task.Delay(100))
            Assert.True(DateTime.UtcNow < until, "the node still lists its peer a minute after it went away");

        // The peer comes back at the same address, knowing nobody either; a newcomer joins through it alone.
        await using var back = await TestNode.StartAsync(Options("other", otherListen, TestNode.Ffn("back.0.1", Dim)), 85);
        await using var newcomer = await TestNode.StartAsync(Options("newcomer", "127.0.0.1:0"), 86, back);
        // The first node finds it by itself, with no restart, and its announcements reach the newcomer.
        await TestNode.WaitForExpertsAsync(newcomer.Node, "back.0.0", "back.0.1");
        await TestNode.WaitForExpertsAsync(first.Node, "back.0.1");
    }
}
