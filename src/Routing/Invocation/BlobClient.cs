using System.Security.Cryptography;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire.Experts;

namespace MoEMesh.Routing.Invocation;

/// <summary>
/// Fetches a file a peer announced (method <c>blob.fetch</c>) in chunks of at most <see cref="ChunkBytes"/>,
/// and checks the SHA-256 of what arrived against the one asked for, so a peer cannot serve other bytes.
/// What a host can make the fetcher take is bounded before a byte is written: the announced size must be
/// within the caller's maximum, each chunk asks for no more than what is left, and an answer longer than
/// what was asked for, or a size other than the one announced, stops the fetch at that answer.
/// </summary>
public sealed class BlobClient(IPeerTransport transport, TimeProvider time)
{
    /// <summary>Method name.</summary>
    public const string FetchMethod = "blob.fetch";

    /// <summary>Bytes asked for per call: 16 MiB, well under the 64 MiB message limit.</summary>
    public const int ChunkBytes = 16 << 20;

    /// <summary>Writes the file with <paramref name="sha256"/> and <paramref name="size"/> bytes from <paramref name="host"/> into <paramref name="destination"/>.</summary>
    /// <param name="host">The peer that announced the file.</param>
    /// <param name="sha256">Hex SHA-256 of the file.</param>
    /// <param name="size">Its size as announced: a host that claims another size, or sends more, is refused.</param>
    /// <param name="maxBytes">The most the caller takes: a larger announced size is refused before any call.</param>
    /// <param name="destination">Receives the bytes.</param>
    /// <param name="perChunkTimeout">Limit on each chunk's call.</param>
    /// <param name="cancellationToken">Stops the fetch.</param>
    /// <returns>Null on success, else why the fetch failed (the destination then holds a partial file).</returns>
    public async Task<string?> FetchAsync(PeerEndpoint host, string sha256, long size, long maxBytes, Stream destination, TimeSpan perChunkTimeout, CancellationToken cancellationToken)
    {
        if (size < 0 || size > maxBytes) return $"{host} announced {sha256} with {size} bytes; this fetch takes 0 to {maxBytes}";
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long offset = 0;
        do
        {
            long asked = Math.Min(ChunkBytes, size - offset);
            var request = new BlobFetchRequest { Sha256 = sha256, Offset = (ulong)offset, Length = (uint)Math.Max(asked, 1) };
            using var response = await transport.CallAsync(host, PeerRequest.Create(FetchMethod, request, default, time.GetUtcNow() + perChunkTimeout), cancellationToken);
            if (!response.IsOk) return $"fetching {sha256} from {host} at byte {offset}: {response}";
            ulong claimed = response.ParseHeader(BlobFetchResponse.Parser).TotalSize;
            if (claimed != (ulong)size) return $"{host} says the file has {claimed} bytes; it was announced with {size}";
            if (response.Payload.Length > asked) return $"{host} sent {response.Payload.Length} bytes at offset {offset} when {asked} were asked for";
            if (response.Payload.IsEmpty && offset < size) return $"{host} sent no bytes at offset {offset} of {size}";
            hash.AppendData(response.Payload.Span);
            await destination.WriteAsync(response.Payload, cancellationToken);
            offset += response.Payload.Length;
        }
        while (offset < size);
        var got = Convert.ToHexStringLower(hash.GetHashAndReset());
        return got == sha256 ? null : $"{host} served bytes whose SHA-256 is {got}, not {sha256}";
    }
}
