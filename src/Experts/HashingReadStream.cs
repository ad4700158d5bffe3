using System.Security.Cryptography;

namespace MoEMesh.Experts;

/// <summary>
/// Reads a file once for two purposes: what is read passes through to the reader (a checkpoint's
/// safetensors parser) and into a SHA-256, so verifying a checkpoint costs no second pass over its bytes;
/// the hash of a prefix (what was read so far) is there too.
/// Read-only; seeking is not supported (the parser only asks the length and position).
/// </summary>
internal sealed class HashingReadStream(Stream inner) : Stream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    /// <summary>The SHA-256 of the bytes read so far, as lower-case hex (the stream can be read on).</summary>
    public string HashSoFar() => Convert.ToHexStringLower(_hash.GetCurrentHash());

    /// <summary>Reads what is left of the stream and returns the SHA-256 of all of it, as lower-case hex.</summary>
    public string HashOfAll()
    {
        var rest = new byte[1 << 16];
        while (Read(rest, 0, rest.Length) > 0)
        {
        }
        return Convert.ToHexStringLower(_hash.GetHashAndReset());
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int read = inner.Read(buffer);
        _hash.AppendData(buffer[..read]);
        return read;
    }

    public override bool CanRead => true;

    public override bool CanSeek => inner.CanSeek;

    public override bool CanWrite => false;

    public override long Length => inner.Length;

    public override long Position
    {
        get => inner.Position;
        set => throw new NotSupportedException("A hashing stream is read from start to end.");
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("A hashing stream is read from start to end.");

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
            inner.Dispose();
        }
        base.Dispose(disposing);
    }
}
