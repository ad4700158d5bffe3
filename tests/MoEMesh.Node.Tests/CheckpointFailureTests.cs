using Microsoft.Extensions.Logging;
using MoEMesh.Node.Hosting;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Node.Tests;

/// <summary>Checkpoints that cannot be restored or written stop the start with the setting named, or make the stop say what was not saved.</summary>
public class CheckpointFailureTests
{
    private static async Task<NodeConfigurationException> StartFailsAsync(NodeOptions options)
    {
        await using var app = NodeHost.Build(options, PeerIdentity.FromSeed(41), l => l.ClearProviders());
        return await Assert.ThrowsAsync<NodeConfigurationException>(() => app.StartAsync());
    }

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
}
