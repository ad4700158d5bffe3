using System.Buffers;
using System.Buffers.Binary;

namespace MoEMesh.Protocol.Framing;

/// <summary>What <see cref="FrameReader"/> found in the bytes it was given.</summary>
internal interface IFrameEvents
{
    /// <summary>A message completed.</summary>
    void OnMessage(ReceivedMessage message);

    /// <summary>A control frame (cancel, ping, pong, go-away, handshake) arrived whole.</summary>
    void OnControl(FrameHeader header, ReadOnlySequence<byte> body);
}

/// <summary>
/// Parses a byte stream into frames without ever needing a whole frame in memory: a header, then (for a
/// message's first frame) the envelope, then payload bytes streamed into the <see cref="MessageAssembler"/>
/// as they arrive. This keeps the connection's buffering independent of the frame size, so a transport
/// that pauses at 1 MiB of unread input can never deadlock on a 1 MiB frame.
/// </summary>
internal sealed class FrameReader(MessageAssembler assembler, FrameKind[] acceptedMessages)
{
    /// <summary>Largest body of a control frame.</summary>
    public const int MaxControlBody = 4096;

    private FrameHeader? _current;
    private long _remaining;
    private bool _envelopeRead;

    /// <summary>Consumes as much of <paramref name="buffer"/> as possible; what is left waits for more bytes.</summary>
    /// <exception cref="ProtocolViolationException">The stream breaks the framing rules.</exception>
    public void Process(ref ReadOnlySequence<byte> buffer, IFrameEvents events)
    {
        while (true)
        {
            if (_current is null)
            {
                if (!FrameHeader.TryReadHeader(ref buffer, out var header)) return;
                Begin(header);
            }
            var frame = _current!.Value;
            if (!IsMessage(frame.Kind))
            {
                if (buffer.Length < frame.BodyLength) return;
                events.OnControl(frame, buffer.Slice(0, frame.BodyLength));
                buffer = buffer.Slice(frame.BodyLength);
                _current = null;
                continue;
            }
            if (frame.Flags.HasFlag(FrameFlags.First) && !_envelopeRead)
            {
                if (!TryReadEnvelope(ref buffer, frame)) return;
            }
            long take = Math.Min(_remaining, buffer.Length);
            if (take > 0)
            {
                assembler.Append(frame.RequestId, buffer.Slice(0, take));
                buffer = buffer.Slice(take);
                _remaining -= take;
            }
            if (_remaining > 0) return;
            _current = null;
            if (frame.Flags.HasFlag(FrameFlags.Last)) events.OnMessage(assembler.Complete(frame.RequestId));
        }
    }

    private void Begin(FrameHeader header)
    {
        if (IsMessage(header.Kind))
        {
            if (Array.IndexOf(acceptedMessages, header.Kind) < 0)
                throw new ProtocolViolationException($"unexpected {header.Kind} frame on this side of the connection");
            if (!header.Flags.HasFlag(FrameFlags.First) && !assembler.IsStarted(header.RequestId))
                throw new ProtocolViolationException($"frame for request {header.RequestId}, which has not started");
        }
        else if (header.BodyLength > MaxControlBody)
        {
            throw new ProtocolViolationException($"{header.Kind} frame of {header.BodyLength} bytes exceeds {MaxControlBody}");
        }
        _current = header;
        _remaining = header.BodyLength;
        _envelopeRead = false;
    }

    private bool TryReadEnvelope(ref ReadOnlySequence<byte> buffer, FrameHeader frame)
    {
        if (frame.BodyLength < 4) throw new ProtocolViolationException($"first frame of request {frame.RequestId} is shorter than its envelope length");
        if (buffer.Length < 4) return false;
        Span<byte> lengthBytes = stackalloc byte[4];
        buffer.Slice(0, 4).CopyTo(lengthBytes);
        uint envelopeLength = BinaryPrimitives.ReadUInt32LittleEndian(lengthBytes);
        if (envelopeLength > MessageAssembler.MaxEnvelopeBytes || envelopeLength > frame.BodyLength - 4)
            throw new ProtocolViolationException($"envelope of request {frame.RequestId} claims {envelopeLength} bytes; it must fit its first frame and {MessageAssembler.MaxEnvelopeBytes} bytes");
        if (buffer.Length < 4 + envelopeLength) return false;
        assembler.Start(frame.Kind, frame.RequestId, buffer.Slice(4, envelopeLength));
        buffer = buffer.Slice(4 + envelopeLength);
        _remaining -= 4 + envelopeLength;
        _envelopeRead = true;
        return true;
    }

    private static bool IsMessage(FrameKind kind) => kind is FrameKind.Request or FrameKind.Response;
}
