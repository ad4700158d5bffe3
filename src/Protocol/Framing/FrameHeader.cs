using System.Buffers;
using System.Buffers.Binary;

namespace MoEMesh.Protocol.Framing;

/// <summary>
/// The fixed 16-byte frame header, little-endian: u32 length of everything after this field (12 + body),
/// u8 kind, u8 flags, u16 reserved (zero), u64 request id; then the body.
/// </summary>
public readonly record struct FrameHeader(FrameKind Kind, FrameFlags Flags, ulong RequestId, int BodyLength)
{
    /// <summary>Bytes in the header.</summary>
    public const int Size = 16;

    /// <summary>Largest body: large messages are cut into frames of at most 1 MiB.</summary>
    public const int MaxBody = 1 << 20;

    /// <summary>Writes the header into <paramref name="destination"/>.</summary>
    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)(BodyLength + Size - 4));
        destination[4] = (byte)Kind;
        destination[5] = (byte)Flags;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], RequestId);
    }

    /// <summary>
    /// Reads one whole frame from the front of <paramref name="buffer"/> when it is all there, advancing past it.
    /// For small frames (handshake, tests); connections stream bodies with <see cref="TryReadHeader"/>.
    /// </summary>
    /// <exception cref="ProtocolViolationException">The bytes cannot be a frame (bad length, kind, flags or reserved bits).</exception>
    public static bool TryRead(ref ReadOnlySequence<byte> buffer, out FrameHeader header, out ReadOnlySequence<byte> body)
    {
        body = default;
        var rest = buffer;
        if (!TryReadHeader(ref rest, out header) || rest.Length < header.BodyLength) return false;
        body = rest.Slice(0, header.BodyLength);
        buffer = rest.Slice(header.BodyLength);
        return true;
    }

    /// <summary>Reads a frame header from the front of <paramref name="buffer"/>, advancing past it; the body may not have arrived yet.</summary>
    /// <exception cref="ProtocolViolationException">The bytes cannot be a frame header.</exception>
    public static bool TryReadHeader(ref ReadOnlySequence<byte> buffer, out FrameHeader header)
    {
        header = default;
        if (buffer.Length < Size) return false;
        Span<byte> raw = stackalloc byte[Size];
        buffer.Slice(0, Size).CopyTo(raw);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(raw);
        if (length < Size - 4 || length > MaxBody + Size - 4)
            throw new ProtocolViolationException($"frame length {length} is outside [{Size - 4}, {MaxBody + Size - 4}]");
        var kind = (FrameKind)raw[4];
        if (!Enum.IsDefined(kind)) throw new ProtocolViolationException($"unknown frame kind {raw[4]}");
        if (raw[5] > (byte)(FrameFlags.First | FrameFlags.Last)) throw new ProtocolViolationException($"unknown frame flags 0x{raw[5]:x2}");
        if (raw[6] != 0 || raw[7] != 0) throw new ProtocolViolationException("reserved frame bits are set");
        header = new FrameHeader(kind, (FrameFlags)raw[5], BinaryPrimitives.ReadUInt64LittleEndian(raw[8..]), (int)(length + 4 - Size));
        buffer = buffer.Slice(Size);
        return true;
    }
}

/// <summary>The peer broke the framing or handshake rules; the connection cannot continue.</summary>
public sealed class ProtocolViolationException(string message) : Exception($"Protocol violation: {message}.");
