using System.Security.Cryptography;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Invocation;

namespace MoEMesh.Node.Tests;

/// <summary>Model files: announced as model:&lt;name&gt;, fetched from the host in chunks, checked by SHA-256.</summary>
public sealed class ModelFetchTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task ModelFile_IsAnnounced_AndAnotherNodeFetchesItWhole()
    {
        var models = _folder.Sub("models");
        Directory.CreateDirectory(models);
        var bytes = new byte[(17 << 20) + 123];
        new Random(1).NextBytes(bytes);
        await File.WriteAllBytesAsync(Path.Combine(models, "trunk.safetensors"), bytes);
        var hostOptions = TestNode.Configure(_folder.Sub("a"));
        hostOptions.ModelDirectory = models;
        await using var host = await TestNode.StartAsync(hostOptions, 21);
        await using var peer = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("b")), 22, host);

        var found = Assert.Single(await peer.Node.Models.FindAsync("trunk", default));
        Assert.Equal(host.Node.PeerId, found.Host);
        Assert.Equal(bytes.Length, found.Size);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), found.Sha256);

        using var fetched = new MemoryStream();
        var problem = await new BlobClient(peer.Node.Transport, TimeProvider.System).FetchAsync(found.Endpoint, found.Sha256, fetched, TimeSpan.FromSeconds(20), default);
        Assert.Null(problem);
        Assert.Equal(bytes, fetched.ToArray());
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
