using Microsoft.Extensions.Logging;
using MoEMesh.Node.Hosting;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Node.Tests;

/// <summary>Starts that cannot work say why: checkpoints that cannot be restored or written, a key file two nodes share; and a stop says which checkpoints it could not write.</summary>
public class StartAndStopFailureTests
{
    /// <summary>The problem that stops the node, found while it is built or while it starts.</summary>
    private static async Task<NodeConfigurationException> StartFailsAsync(NodeOptions options) =>
        await Assert.ThrowsAsync<NodeConfigurationException>(async () =>
        {
            await using var app = NodeHost.Build(options, PeerIdentity.FromSeed(41), l => l.ClearProviders());
            await app.StartAsync();
        });

    [Fact]
    public async Task ACheckpointOfAnotherWidth_StopsTheStart_NamingTheField()
    {
        using var folder = new TempFolder();
        var checkpoints = Path.Combine(folder.Path, "ck");
        await using (var first = await TestNode.StartAsync(TestNode.Configure(checkpoints, TestNode.Ffn("ffn.0", hidden: 8)), 40))
        {
        }
        var e = await StartFailsAsync(TestNode.Configure(checkpoints, TestNode.Ffn("ffn.0", hidden: 16)));
        Assert.StartsWith("MoEMesh:Experts:0: the checkpoint of ffn.0 cannot be restored: ", e.Message);
        Assert.Contains("saved with hidden width 8, not 16 and inner width 32, not 64. Configure the expert as it was saved, or move", e.Message);
    }

    [Fact]
    public async Task ACheckpointFolderThatCannotBeWritten_StopsTheStart()
    {
        using var folder = new TempFolder();
        var file = Path.Combine(folder.Path, "a-file");
        await File.WriteAllTextAsync(file, "not a folder");
        var e = await StartFailsAsync(TestNode.Configure(Path.Combine(file, "ck"), TestNode.Ffn("ffn.0")));
        Assert.StartsWith($"MoEMesh:CheckpointDirectory: {Path.Combine(file, "ck")} cannot be written (", e.Message);
        Assert.EndsWith("choose a folder this user can write (--checkpoint-dir).", e.Message);
    }

    [Fact]
    public async Task ACheckpointThatFailsAtStop_IsNamed_AndNotReportedWritten()
    {
        using var folder = new TempFolder();
        var checkpoints = Path.Combine(folder.Path, "ck");
        var node = await TestNode.StartAsync(TestNode.Configure(checkpoints, TestNode.Ffn("ffn.0"), TestNode.Ffn("ffn.1")), 42);
        if (Directory.Exists(Path.Combine(checkpoints, "ffn.1"))) Directory.Delete(Path.Combine(checkpoints, "ffn.1"), recursive: true);
        await File.WriteAllTextAsync(Path.Combine(checkpoints, "ffn.1"), "a file where the expert's folder goes");
        await node.DisposeAsync();
        Assert.Equal(["ffn.1"], node.Node.UnsavedExperts);
        Assert.True(File.Exists(Path.Combine(checkpoints, "ffn.0", "checkpoint.json")));
    }

    [Fact]
    public async Task TwoNodesSharingAKey_TheSecondSaysSo()
    {
        using var folder = new TempFolder();
        await using var first = await TestNode.StartAsync(TestNode.Configure(folder.Sub("a")), 43);
        var options = TestNode.Configure(folder.Sub("b"));
        var e = await Assert.ThrowsAsync<Dht.Node.DhtBootstrapException>(() => TestNode.StartAsync(options, 43, first));
        Assert.Contains("the peer there has this node's own PeerId: it is this node, or another node runs with the same key file (give each node its own --key-file)", e.Message);
    }
}
