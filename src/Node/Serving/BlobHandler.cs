using MoEMesh.Protocol;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Node.Models;
using MoEMesh.Routing.Invocation;

namespace MoEMesh.Node.Serving;

/// <summary>
/// Serves <c>blob.fetch</c>: a byte range of a model file this node holds, by SHA-256. An unknown hash is
/// NotFound, an offset past the end InvalidArgument; a range is at most <see cref="BlobClient.ChunkBytes"/>.
/// </summary>
internal static class BlobHandler
{
    public static PeerRouter MapBlobs(this PeerRouter router, ModelStore files)
    {
        router.Map(BlobClient.FetchMethod, async (request, cancellationToken) =>
        {
            var fetch = request.ParseHeader(BlobFetchRequest.Parser);
            var file = files.FindBySha(fetch.Sha256)
                ?? throw new PeerRpcException(StatusCode.NotFound, $"blob.fetch: no file with SHA-256 {fetch.Sha256} is offered by this node; it offers {files.Current.Count} files.");
            ulong size = file.Publication.Size;
            if (fetch.Offset > size)
                throw new PeerRpcException(StatusCode.InvalidArgument, $"blob.fetch: offset {fetch.Offset} is past the end of {file.Name} ({size} bytes).");
            int length = (int)Math.Min(Math.Min(fetch.Length == 0 ? BlobClient.ChunkBytes : fetch.Length, BlobClient.ChunkBytes), size - fetch.Offset);
            var bytes = PooledBuffer.Rent(length);
            try
            {
                await using var stream = File.OpenRead(file.Path);
                stream.Position = (long)fetch.Offset;
                await stream.ReadExactlyAsync(bytes.Memory, cancellationToken);
            }
            catch
            {
                bytes.Dispose();
                throw;
            }
            return PeerResponse.Ok(new BlobFetchResponse { TotalSize = size }, bytes.Memory, bytes);
        });
        return router;
    }
}
