using System.Security.Cryptography;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Invocation;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Tests;

/// <summary>
/// Publishing a model to nodes (model.store) over real sockets: what a node holds, keeps across restarts and
/// announces; the uploads it refuses; a tampered copy refused by a fetcher; and a newer version replacing the
/// older one everywhere it is held.
/// </summary>
public sealed class PublicationTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly PeerIdentity _publisher = PeerIdentity.FromSeed(77);

    public void Dispose()
    {
        _publisher.Dispose();
        _folder.Dispose();
    }

    private (string Path, ModelPublication Publication) Saved(string name, long version, PeerIdentity? publisher = null, ulong seed = 7)
    {
        var path = _folder.Sub($"{name}-{version}-{seed}.safetensors");
        TestModels.Write(path, name, version, seed: seed);
        var bytes = File.ReadAllBytes(path);
        return (path, ModelPublications.Sign(name, version, Convert.ToHexStringLower(SHA256.HashData(bytes)), (ulong)bytes.Length, publisher ?? _publisher));
    }

    private static Hosting.NodeOptions Holder(string folder, string models, double updateSeconds = 30)
    {
        var options = TestNode.Configure(folder);
        options.ModelDirectory = models;
        options.UpdatePeriod = TimeSpan.FromSeconds(updateSeconds);
        return options;
    }

    private static Task<string?> UploadAsync(TestNode from, TestNode to, string path, ModelPublication publication) =>
        new ModelUploadClient(from.Node.Transport, TimeProvider.System).UploadAsync(to.Endpoint, path, publication, TimeSpan.FromSeconds(30), default);

    [Fact]
    public async Task UploadedModel_IsHeldAnnouncedAndKeptAcrossARestart()
    {
        var models = _folder.Sub("models-a");
        var (path, publication) = Saved("genre", 10);
        await using (var holder = await TestNode.StartAsync(Holder(_folder.Sub("a"), models), 51))
        await using (var client = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("c")), 52, holder))
        {
            Assert.Null(await UploadAsync(client, holder, path, publication));
            Assert.Equal(["genre"], holder.Node.HeldModels.Select(m => m.Name));
            var found = Assert.Single(await client.Node.Models.FindAsync("genre", default));
            Assert.Equal((holder.Node.PeerId, 10L, publication.Sha256), (found.Host, found.Version, found.Sha256));
            Assert.True(ModelPublications.Verify(found.Publication));
            var listed = Assert.Single(await client.Node.Models.ListAsync(default));
            Assert.Equal(("genre", 10L), (listed.Name, listed.Newest.Version));
            // The same version again is already held: no second copy, no error.
            Assert.Null(await UploadAsync(client, holder, path, publication));
        }
        await using var restarted = await TestNode.StartAsync(Holder(_folder.Sub("a"), models), 51);
        var held = Assert.Single(restarted.Node.HeldModels);
        Assert.Equal(publication, held.Publication);
        Assert.Equal(publication.Sha256, Assert.Single(await restarted.Node.Models.FindAsync("genre", default)).Sha256);
    }

    [Fact]
    public async Task Uploads_ThatCannotBeTrusted_AreRefused_AndNothingIsHeld()
    {
        await using var holder = await TestNode.StartAsync(Holder(_folder.Sub("a"), _folder.Sub("models")), 53);
        await using var client = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("c")), 54, holder);
        var (path, publication) = Saved("genre", 10);
        var (otherPath, _) = Saved("genre", 10, seed: 8);

        var unsigned = publication.Clone();
        unsigned.Signature = Google.Protobuf.ByteString.Empty;
        Assert.Contains("not signed", await UploadAsync(client, holder, path, unsigned));
        var altered = publication.Clone();
        altered.Version = 11;
        Assert.Contains("signature does not verify", await UploadAsync(client, holder, path, altered));
        // Other bytes than the publication's hash: every byte goes up, then the hash check refuses it.
        var mismatch = ModelPublications.Sign("genre", 10, publication.Sha256, (ulong)new FileInfo(otherPath).Length, _publisher);
        Assert.Contains("SHA-256", await UploadAsync(client, holder, otherPath, mismatch));
        // A signed file that is not the model it names.
        var (wrongName, _) = Saved("other", 10);
        var bytes = await File.ReadAllBytesAsync(wrongName);
        var misnamed = ModelPublications.Sign("genre", 10, Convert.ToHexStringLower(SHA256.HashData(bytes)), (ulong)bytes.Length, _publisher);
        Assert.Contains("the file holds other version 10", await UploadAsync(client, holder, wrongName, misnamed));
        Assert.Empty(holder.Node.HeldModels);

        Assert.Null(await UploadAsync(client, holder, path, publication));
        using var intruder = PeerIdentity.FromSeed(78);
        var (newer, byIntruder) = Saved("genre", 11, intruder);
        Assert.Contains("only that publisher can publish its new versions", await UploadAsync(client, holder, newer, byIntruder));
        var (older, olderPublication) = Saved("genre", 9);
        Assert.Contains("older than the version held here", await UploadAsync(client, holder, older, olderPublication));
        Assert.Equal(10, Assert.Single(holder.Node.HeldModels).Publication.Version);
    }

    [Fact]
    public async Task Uploads_BeyondTheNodesLimits_AreRefusedBeforeAByteIsTaken()
    {
        var options = Holder(_folder.Sub("a"), _folder.Sub("models"));
        options.Models.MaxHeldModels = 1;
        await using var holder = await TestNode.StartAsync(options, 61);
        await using var client = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("c")), 62, holder);
        var (path, publication) = Saved("genre", 10);
        // A size no file has: read as a signed number it would be -1 and pass a signed comparison.
        var huge = ModelPublications.Sign("genre", 10, publication.Sha256, ulong.MaxValue, _publisher);
        using var response = await client.Node.Transport.CallAsync(holder.Endpoint, Protocol.Rpc.PeerRequest.Create(ModelUploadClient.StoreMethod,
            new ModelStoreRequest { Publication = huge, Offset = 0 }, new byte[16], DateTimeOffset.UtcNow + TimeSpan.FromSeconds(10)), default);
        Assert.Equal(Protocol.Wire.StatusCode.ResourceExhausted, response.Status);
        Assert.Contains("MaxModelBytes", response.Message);
        Assert.False(Directory.Exists(Path.Combine(_folder.Sub("models"), ".incoming")) && Directory.EnumerateFiles(Path.Combine(_folder.Sub("models"), ".incoming")).Any());

        Assert.Null(await UploadAsync(client, holder, path, publication));
        var (other, otherPublication) = Saved("other", 10);
        Assert.Contains("its maximum (MaxHeldModels)", await UploadAsync(client, holder, other, otherPublication));
        Assert.Equal(["genre"], holder.Node.HeldModels.Select(m => m.Name));
    }

    [Fact]
    public async Task TamperedCopy_IsRefused_AndTheFetcherTakesAnotherHolder()
    {
        var (path, publication) = Saved("genre", 10);
        await using var good = await TestNode.StartAsync(Holder(_folder.Sub("g"), _folder.Sub("models-g")), 55);
        await using var bad = await TestNode.StartAsync(Holder(_folder.Sub("b"), _folder.Sub("models-b")), 56, good);
        await using var client = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("c")), 57, good);
        Assert.Null(await UploadAsync(client, good, path, publication));
        Assert.Null(await UploadAsync(client, bad, path, publication));
        // The bad holder's file changes on disk after it was announced: it now serves other bytes.
        var held = Assert.Single(bad.Node.HeldModels).Path;
        var bytes = await File.ReadAllBytesAsync(held);
        bytes[^1] ^= 0xFF;
        await File.WriteAllBytesAsync(held, bytes);

        var holders = (await client.Node.Models.FindAsync("genre", default)).OrderBy(h => h.Host == bad.Node.PeerId ? 0 : 1).ToArray();
        Assert.Equal([bad.Node.PeerId, good.Node.PeerId], holders.Select(h => h.Host));
        var fetcher = new ModelFetcher(client.Node.Models, new BlobClient(client.Node.Transport, TimeProvider.System), TimeSpan.FromSeconds(20));
        var fetched = await fetcher.FetchFromAsync(holders, _folder.Sub("fetched"), long.MaxValue, default);
        Assert.Equal(good.Node.PeerId, fetched.Source.Host);
        Assert.Equal(("genre", 10L), (fetched.Model.Name, fetched.Model.Version));
        var failed = await Assert.ThrowsAsync<ModelFetchFailedException>(() => fetcher.FetchFromAsync(holders[..1], _folder.Sub("fetched"), long.MaxValue, default));
        Assert.Contains("served bytes whose SHA-256 is", failed.Message);
    }

    [Fact]
    public async Task NewerVersion_FromTheSamePublisher_ReplacesTheOlderEverywhereItIsHeld()
    {
        var (v1, p1) = Saved("genre", 10);
        var (v2, p2) = Saved("genre", 20, seed: 9);
        await using var first = await TestNode.StartAsync(Holder(_folder.Sub("a"), _folder.Sub("models-a"), updateSeconds: 0.5), 58);
        await using var second = await TestNode.StartAsync(Holder(_folder.Sub("b"), _folder.Sub("models-b"), updateSeconds: 0.5), 59, first);
        await using var client = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("c")), 60, first);
        Assert.Null(await UploadAsync(client, first, v1, p1));
        Assert.Null(await UploadAsync(client, second, v1, p1));
        // Only the first node is handed the new version; the second takes it from there by itself.
        Assert.Null(await UploadAsync(client, first, v2, p2));
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (second.Node.HeldModels.SingleOrDefault()?.Publication.Version != 20) await Task.Delay(100, limit.Token);
        Assert.Equal(p2, second.Node.HeldModels.Single().Publication);
        Assert.Equal(await File.ReadAllBytesAsync(v2), await File.ReadAllBytesAsync(second.Node.HeldModels.Single().Path));
    }
}
