using System.Security.Cryptography;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Invocation;

namespace MoEMesh.Node.Tests;

/// <summary>Held model files: announced as model:&lt;name&gt;, fetched from the holder in chunks, checked by SHA-256.</summary>
public sealed class ModelFetchTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task ModelFile_IsAnnounced_AndAnotherNodeFetchesItWhole_InSeveralChunks()
    {
        var models = _folder.Sub("models");
        Directory.CreateDirectory(models);
        var path = Path.Combine(models, "big.safetensors");
        // A trunk of 70,000 × 64 floats makes the file larger than one 16 MiB chunk.
        TestModels.Write(path, "big", 5, TestModels.Spec(width: 64, buckets: 70_000));
        var bytes = await File.ReadAllBytesAsync(path);
        Assert.True(bytes.Length > BlobClient.ChunkBytes);
        var hostOptions = TestNode.Configure(_folder.Sub("a"));
        hostOptions.ModelDirectory = models;
        await using var host = await TestNode.StartAsync(hostOptions, 21);
        await using var peer = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("b")), 22, host);

        var found = Assert.Single(await peer.Node.Models.FindAsync("big", default));
        Assert.Equal(host.Node.PeerId, found.Host);
        Assert.Equal(bytes.Length, found.Size);
        Assert.Equal(5, found.Version);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), found.Sha256);

        using var fetched = new MemoryStream();
        var problem = await new BlobClient(peer.Node.Transport, TimeProvider.System).FetchAsync(found.Endpoint, found.Sha256, found.Size, found.Size, fetched, TimeSpan.FromSeconds(20), default);
        Assert.Null(problem);
        Assert.Equal(bytes, fetched.ToArray());
    }

    [Fact]
    public async Task FileThatIsNotAModel_OrIsMisnamed_IsNotOffered()
    {
        var models = _folder.Sub("models");
        Directory.CreateDirectory(models);
        await File.WriteAllBytesAsync(Path.Combine(models, "junk.safetensors"), new byte[1000]);
        TestModels.Write(Path.Combine(models, "renamed.safetensors"), "original", 1);
        TestModels.Write(Path.Combine(models, "good.safetensors"), "good", 1);
        var options = TestNode.Configure(_folder.Sub("a"));
        options.ModelDirectory = models;
        await using var host = await TestNode.StartAsync(options, 24);
        Assert.Equal(["good"], host.Node.HeldModels.Select(m => m.Name));
        Assert.Empty(await host.Node.Models.FindAsync("junk", default));
    }

    [Fact]
    public async Task UnknownHash_IsNotFound_WithTheHashNamed()
    {
        await using var host = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("a")), 23);
        using var response = await host.Node.Transport.CallAsync(host.Endpoint,
            PeerRequest.Create(BlobClient.FetchMethod, new BlobFetchRequest { Sha256 = "abc123", Length = 10 }, default, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(10)), default);
        Assert.Equal(StatusCode.NotFound, response.Status);
        Assert.Contains("abc123", response.Message);
    }
}
