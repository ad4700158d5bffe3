using MoEMesh.Protocol;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire.Experts;

namespace MoEMesh.Routing.Invocation;

/// <summary>
/// Hands a node a model file to hold (method <c>model.store</c>), in order, <see cref="ChunkBytes"/> per
/// call, with the publication the publisher signed. The node checks the publication before it takes a
/// byte and the file once the last byte is in; a node that already holds that version answers at once.
/// </summary>
public sealed class ModelUploadClient(IPeerTransport transport, TimeProvider time)
{
    /// <summary>Method name.</summary>
    public const string StoreMethod = "model.store";

    /// <summary>Bytes per call: 4 MiB.</summary>
    public const int ChunkBytes = 4 << 20;

    /// <summary>Uploads the file at <paramref name="path"/> (whose hash and size <paramref name="publication"/> names) to <paramref name="node"/>.</summary>
    /// <returns>Null once the node holds it, else why not.</returns>
    public async Task<string?> UploadAsync(PeerEndpoint node, string path, ModelPublication publication, TimeSpan perChunkTimeout, CancellationToken cancellationToken)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.Asynchronous);
        if (file.Length != (long)publication.Size) return $"{path} has {file.Length} bytes; the publication says {publication.Size}";
        using var buffer = PooledBuffer.Rent(ChunkBytes);
        ulong offset = 0;
        while (true)
        {
            int length = await file.ReadAtLeastAsync(buffer.Memory, buffer.Length, throwOnEndOfStream: false, cancellationToken);
            var request = new ModelStoreRequest { Publication = publication, Offset = offset };
            using var response = await transport.CallAsync(node, PeerRequest.Create(StoreMethod, request, buffer.Memory[..length], time.GetUtcNow() + perChunkTimeout), cancellationToken);
            if (!response.IsOk) return $"{node} refused {publication.Name} at byte {offset}: {response.Message}";
            var answer = response.ParseHeader(ModelStoreResponse.Parser);
            if (answer.Installed) return null;
            offset += (ulong)length;
            if (answer.Received != offset) return $"{node} holds {answer.Received} bytes of {publication.Name}; {offset} were sent";
            if (offset >= publication.Size) return $"{node} took every byte of {publication.Name} but did not install it";
        }
    }
}
