using System.Security.Cryptography;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Invocation;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Models;

/// <summary>
/// Serves <c>model.store</c>: a publisher hands this node a model to hold, chunk by chunk in order. The
/// publication is checked before a byte is taken (signed, a valid name, within MaxModelBytes, newer than
/// the held version and from its publisher); bytes go to a staging file under the model folder with a
/// running SHA-256; when the last byte is in, the hash must match and the file must load as the model the
/// publication names, and only then is it installed and announced. At most
/// <see cref="MaxOpenUploads"/> uploads are open at once; one that gets no chunk for <see cref="IdleUpload"/>
/// is dropped when the next request arrives. An upload is touched only while its gate is held, so dropping
/// one never pulls its file from under a chunk being written.
/// </summary>
internal sealed class ModelUploads(ModelStore store, ModelServingOptions options, TimeProvider time, Func<HeldModel, Task> installed)
{
    /// <summary>Uploads that may be open at once.</summary>
    public const int MaxOpenUploads = 4;

    /// <summary>How long an upload may go without a chunk before it is dropped.</summary>
    public static readonly TimeSpan IdleUpload = TimeSpan.FromMinutes(5);

    private readonly Dictionary<string, Upload> _open = new(StringComparer.Ordinal);

    public PeerRouter Map(PeerRouter router) => router.Map(ModelUploadClient.StoreMethod, ReceiveAsync);

    private async ValueTask<PeerResponse> ReceiveAsync(PeerRequest request, CancellationToken cancellationToken)
    {
        if (!options.AcceptUploads) return PeerResponse.Error(StatusCode.InvalidArgument, "model.store: this node does not accept models from peers (Models:AcceptUploads is off).");
        var call = request.ParseHeader(ModelStoreRequest.Parser);
        var publication = call.Publication ?? throw new PeerRpcException(StatusCode.InvalidArgument, "model.store: the request carries no publication.");
        if (store.RefusalOf(publication, out bool alreadyHeld) is { } refusal)
        {
            Drop(KeyOf(publication));
            return PeerResponse.Error(refusal.Status, $"model.store: {refusal.Message}");
        }
        if (alreadyHeld)
        {
            Drop(KeyOf(publication));
            return PeerResponse.Ok(new ModelStoreResponse { Received = publication.Size, Installed = true });
        }
        var upload = Open(publication, call.Offset);
        await upload.Gate.WaitAsync(cancellationToken);
        try
        {
            if (upload.Abandoned || upload.Closed) return PeerResponse.Error(StatusCode.InvalidArgument, $"model.store: the upload of {publication.Name} was dropped; start again at byte 0.");
            if (call.Offset != upload.Received)
                return PeerResponse.Error(StatusCode.InvalidArgument, $"model.store: {publication.Name}: the next chunk starts at byte {upload.Received}, not {call.Offset}.");
            if ((ulong)request.Payload.Length > publication.Size - upload.Received)
                return Fail(upload, StatusCode.InvalidArgument, $"{request.Payload.Length} bytes at offset {call.Offset} run past the end of the {publication.Size}-byte file.");
            await upload.File.WriteAsync(request.Payload, cancellationToken);
            upload.Hash.AppendData(request.Payload.Span);
            upload.Received += (ulong)request.Payload.Length;
            upload.LastChunk = time.GetUtcNow();
            if (upload.Received < publication.Size) return PeerResponse.Ok(new ModelStoreResponse { Received = upload.Received });

            await upload.File.DisposeAsync();
            var sha = Convert.ToHexStringLower(upload.Hash.GetHashAndReset());
            if (sha != publication.Sha256) return Fail(upload, StatusCode.InvalidArgument, $"the bytes' SHA-256 is {sha}; the publication says {publication.Sha256}.");
            HeldModel held;
            try
            {
                held = store.Install(upload.Path, publication);
            }
            catch (ModelRefusedException e)
            {
                return Fail(upload, e.Status, e.Message);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return Fail(upload, StatusCode.Internal, $"this node could not write it: {e.Message}");
            }
            Close(upload, delete: false);
            await installed(held);
            return PeerResponse.Ok(new ModelStoreResponse { Received = upload.Received, Installed = true });
        }
        finally
        {
            if (upload.Abandoned) upload.Close(delete: true);
            upload.Gate.Release();
        }
    }

    /// <summary>Uploads are told apart by the file's hash and who publishes it, so one publisher cannot cut another's.</summary>
    private static string KeyOf(ModelPublication publication) => $"{publication.Sha256}:{ModelPublications.PublisherOf(publication)}";

    /// <summary>The open upload of this publication, or a new one when the call starts at byte 0.</summary>
    private Upload Open(ModelPublication publication, ulong offset)
    {
        var key = KeyOf(publication);
        List<Upload> idle;
        Upload upload;
        lock (_open)
        {
            var now = time.GetUtcNow();
            idle = _open.Values.Where(u => now - u.LastChunk > IdleUpload).ToList();
            foreach (var u in idle) _open.Remove(u.Key);
            if (_open.TryGetValue(key, out var open) && open.Publication.Equals(publication)) return open;
            if (offset != 0) throw new PeerRpcException(StatusCode.InvalidArgument, $"model.store: no upload of {publication.Name} is open here; start at byte 0.");
            if (open is not null)
            {
                _open.Remove(key);
                idle.Add(open);
            }
            if (_open.Count >= MaxOpenUploads)
            {
                Abandon(idle);
                throw new PeerRpcException(StatusCode.ResourceExhausted, $"model.store: {MaxOpenUploads} uploads are already open here; try again later.");
            }
            Directory.CreateDirectory(store.IncomingFolder);
            var path = Path.Combine(store.IncomingFolder, $"{publication.Sha256}-{Guid.NewGuid():N}.part");
            upload = new Upload(key, publication, path, new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20, FileOptions.Asynchronous), now);
            _open[key] = upload;
        }
        Abandon(idle);
        return upload;
    }

    private PeerResponse Fail(Upload upload, StatusCode status, string message)
    {
        Close(upload, delete: true);
        return PeerResponse.Error(status, $"model.store: {upload.Publication.Name}: {message}");
    }

    private void Drop(string key)
    {
        Upload? upload;
        lock (_open) _open.Remove(key, out upload);
        if (upload is not null) Abandon([upload]);
    }

    /// <summary>Closes uploads taken out of the table: at once when no chunk is being written, else by the request writing it.</summary>
    private static void Abandon(IEnumerable<Upload> uploads)
    {
        foreach (var upload in uploads)
        {
            if (!upload.Gate.Wait(0))
            {
                upload.Abandoned = true;
                continue;
            }
            try
            {
                upload.Close(delete: true);
            }
            finally
            {
                upload.Gate.Release();
            }
        }
    }

    /// <summary>Forgets and closes an upload whose gate the caller holds.</summary>
    private void Close(Upload upload, bool delete)
    {
        lock (_open)
            if (_open.TryGetValue(upload.Key, out var current) && current == upload) _open.Remove(upload.Key);
        upload.Close(delete);
    }

    private sealed class Upload(string key, ModelPublication publication, string path, FileStream file, DateTimeOffset now)
    {
        public string Key { get; } = key;

        public ModelPublication Publication { get; } = publication;

        public string Path { get; } = path;

        public FileStream File { get; } = file;

        public IncrementalHash Hash { get; } = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        public SemaphoreSlim Gate { get; } = new(1, 1);

        public ulong Received { get; set; }

        public DateTimeOffset LastChunk { get; set; } = now;

        /// <summary>Taken out of the table while a chunk was being written: the writer closes it.</summary>
        public bool Abandoned { get; set; }

        /// <summary>Its file and hash are released.</summary>
        public bool Closed { get; private set; }

        public void Close(bool delete)
        {
            if (Closed) return;
            Closed = true;
            File.Dispose();
            Hash.Dispose();
            if (delete) System.IO.File.Delete(Path);
        }
    }
}
