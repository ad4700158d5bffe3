using MoEMesh.Protocol;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Node.Models;
using MoEMesh.Routing.Invocation;

namespace MoEMesh.Node.Serving;

/// <summary>
/// Serves <c>blob.fetch</c>: a byte range of a model file or a snapshot of expert weights this node holds, by SHA-256. An unknown hash is
/// NotFound, an offset past the end InvalidArgument; a range is at most <see cref="BlobClient.ChunkBytes"/>.
/// </summary>
internal static class BlobHandler
{
    public static PeerRouter MapBlobs(this PeerRouter router, ModelStore files, Func<string, Weights.HeldSnapshot?> snapshots)
    {
        router.Map(BlobClient.FetchMethod, async (request, cancellationToken) =>
        {
            var fetch = request.ParseHeader(BlobFetchRequest.Parser);
            var (path, name, size) = files.FindBySha(fetch.Sha256) is { } model ? (model.Path, model.Name, model.Publication.Size)
                : snapshots(fetch.Sha256) is { } held ? (held.Path, $"the weights of {held.Uid}", held.Snapshot.Size)
                : throw new PeerRpcException(StatusCode.NotFound, $"blob.fetch: no file with SHA-256 {fetch.Sha256} is offered by this node; it offers {files.Current.Count} model files and snapshots of expert weights.");
            if (fetch.Offset > size)
                throw new PeerRpcException(StatusCode.InvalidArgument, $"blob.fetch: offset {fetch.Offset} is past the end of {name} ({size} bytes).");
            int length = (int)Math.Min(Math.Min(fetch.Length == 0 ? BlobClient.ChunkBytes : fetch.Length, BlobClient.ChunkBytes), size - fetch.Offset);
            var bytes = PooledBuffer.Rent(length);
            try
            {
                await using var stream = File.OpenRead(path);
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
