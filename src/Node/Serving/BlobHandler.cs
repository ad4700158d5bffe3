using MoEMesh.Protocol;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Invocation;

namespace MoEMesh.Node.Serving;

/// <summary>
/// Serves <c>blob.fetch</c>: a byte range of a model file this node offers, by SHA-256. An unknown hash is
/// NotFound, an offset past the end InvalidArgument; a range is at most <see cref="BlobClient.ChunkBytes"/>.
/// </summary>
internal static class BlobHandler
{
    public static PeerRouter MapBlobs(this PeerRouter router, ModelFiles files)
    {
        router.Map(BlobClient.FetchMethod, async (request, cancellationToken) =>
        {
            var fetch = request.ParseHeader(BlobFetchRequest.Parser);
            var file = files.Find(fetch.Sha256)
                ?? throw new PeerRpcException(StatusCode.NotFound, $"blob.fetch: no file with SHA-256 {fetch.Sha256} is offered by this node; it offers {files.Current.Count} files.");
            if (fetch.Offset > (ulong)file.Size)
                throw new PeerRpcException(StatusCode.InvalidArgument, $"blob.fetch: offset {fetch.Offset} is past the end of {file.Name} ({file.Size} bytes).");
            int length = (int)Math.Min(Math.Min(fetch.Length == 0 ? BlobClient.ChunkBytes : fetch.Length, BlobClient.ChunkBytes), (ulong)file.Size - fetch.Offset);
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
            return PeerResponse.Ok(new BlobFetchResponse { TotalSize = (ulong)file.Size }, bytes.Memory, bytes);
        });
        return router;
    }
}
