using System.Security.Cryptography;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.InMemory;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Invocation;

namespace MoEMesh.Routing.Tests;

/// <summary>A host serving a file by blob.fetch, honestly or not, on the in-memory network.</summary>
public class BlobClientTests
{
    private static readonly TimeSpan ChunkTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How a host answers a chunk request for a file of <c>file.Length</c> bytes.</summary>
    private delegate (ulong TotalSize, byte[] Payload) Serve(BlobFetchRequest request, byte[] file);

    private static (BlobClient Client, PeerEndpoint Host, List<BlobFetchRequest> Asked) Start(byte[] file, Serve serve)
    {
        var network = new InMemoryNetwork(TimeProvider.System);
        var hostIdentity = PeerIdentity.FromSeed(71);
        var asked = new List<BlobFetchRequest>();
        var router = new PeerRouter(TimeProvider.System);
        router.Map(BlobClient.FetchMethod, (request, _) =>
        {
            var fetch = request.ParseHeader(BlobFetchRequest.Parser);
            lock (asked) asked.Add(fetch);
            var (total, payload) = serve(fetch, file);
            return ValueTask.FromResult(PeerResponse.Ok(new BlobFetchResponse { TotalSize = total }, payload));
        });
        var hostAddress = new PeerAddress("host", 7000);
        network.Join(hostIdentity.PeerId, hostAddress, router);
        var client = network.Join(PeerIdentity.FromSeed(72).PeerId, new PeerAddress("client", 7000), new PeerRouter(TimeProvider.System));
        return (new BlobClient(client, TimeProvider.System), new PeerEndpoint(hostAddress, hostIdentity.PeerId), asked);
    }

    private static (ulong, byte[]) Honest(BlobFetchRequest request, byte[] file) =>
        ((ulong)file.Length, file.AsSpan((int)request.Offset, (int)Math.Min(request.Length, (ulong)file.Length - request.Offset)).ToArray());

    private static string Sha(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    [Fact]
    public async Task HonestHost_IsFetchedInChunksAskingNoMoreThanWhatIsLeft()
    {
        var file = new byte[BlobClient.ChunkBytes + 1000];
        new Random(1).NextBytes(file);
        var (client, host, asked) = Start(file, Honest);
        using var into = new MemoryStream();
        Assert.Null(await client.FetchAsync(host, Sha(file), file.Length, file.Length, into, ChunkTimeout, default));
        Assert.Equal(file, into.ToArray());
        Assert.Equal([(ulong)BlobClient.ChunkBytes, 1000UL], asked.Select(a => (ulong)a.Length));
    }

    [Fact]
    public async Task HostSendingMoreThanAskedFor_IsStoppedAtThatAnswer()
    {
        var file = new byte[5000];
        var (client, host, asked) = Start(file, (request, f) => ((ulong)f.Length, new byte[request.Length + 1]));
        using var into = new MemoryStream();
        var problem = await client.FetchAsync(host, Sha(file), file.Length, file.Length, into, ChunkTimeout, default);
        Assert.Contains("sent 5001 bytes at offset 0 when 5000 were asked for", problem);
        Assert.Equal(0, into.Length);
        Assert.Single(asked);
    }

    [Fact]
    public async Task AnnouncedSizeBeyondTheCallersMaximum_IsRefusedBeforeAnyCall()
    {
        var file = new byte[5000];
        var (client, host, asked) = Start(file, Honest);
        using var into = new MemoryStream();
        var problem = await client.FetchAsync(host, Sha(file), file.Length, maxBytes: 4096, into, ChunkTimeout, default);
        Assert.Contains("this fetch takes 0 to 4096", problem);
        Assert.Empty(asked);
    }

    [Fact]
    public async Task HostClaimingAnotherSize_IsRefused()
    {
        var file = new byte[5000];
        var (client, host, _) = Start(file, (request, f) => (ulong.MaxValue, f[..10]));
        using var into = new MemoryStream();
        var problem = await client.FetchAsync(host, Sha(file), file.Length, file.Length, into, ChunkTimeout, default);
        Assert.Contains($"says the file has {ulong.MaxValue} bytes; it was announced with 5000", problem);
    }
}
