using System.Buffers;

namespace MoEMesh.Protocol;

/// <summary>
/// Bytes rented from <see cref="ArrayPool{T}.Shared"/> with an exact length. Payloads of calls live in
/// these so a 1 MiB activation does not allocate on the large-object heap per call. Dispose returns
/// the array; disposing twice is harmless.
/// </summary>
public sealed class PooledBuffer : IDisposable
{
    private byte[]? _array;

    private PooledBuffer(byte[] array, int length)
    {
        _array = array;
        Length = length;
    }

    /// <summary>An empty buffer.</summary>
    public static PooledBuffer Empty => new([], 0);

    /// <summary>Number of bytes.</summary>
    public int Length { get; }

    /// <summary>The bytes.</summary>
    public Memory<byte> Memory => (_array ?? throw new ObjectDisposedException(nameof(PooledBuffer))).AsMemory(0, Length);

    /// <summary>The bytes as a span.</summary>
    public Span<byte> Span => Memory.Span;

    /// <summary>Rents a buffer of exactly <paramref name="length"/> usable bytes (contents unspecified).</summary>
    public static PooledBuffer Rent(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return length == 0 ? Empty : new PooledBuffer(ArrayPool<byte>.Shared.Rent(length), length);
    }

    /// <summary>A pooled copy of <paramref name="bytes"/>.</summary>
    public static PooledBuffer CopyOf(ReadOnlySpan<byte> bytes)
    {
        var buffer = Rent(bytes.Length);
        bytes.CopyTo(buffer.Span);
        return buffer;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        var array = Interlocked.Exchange(ref _array, null);
        if (array is { Length: > 0 }) ArrayPool<byte>.Shared.Return(array);
    }
}
