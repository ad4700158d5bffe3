using System.Buffers;
using System.Buffers.Binary;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Protocol.Framing;

/// <summary>
/// Rebuilds messages from interleaved frames, one partial message per request id. The envelope must
/// arrive whole in the first frame; its payload_length sizes the payload buffer, which counts against
/// a per-connection budget so a peer cannot reserve unbounded memory by announcing large payloads.
/// An oversized message is refused (its later frames are discarded) and reported once it ends.
/// </summary>
internal sealed class MessageAssembler(int maxMessageBytes, long maxBufferedBytes) : IDisposable
{
    /// <summary>Largest envelope (protobuf header of a call) accepted.</summary>
    public const int MaxEnvelopeBytes = 256 * 1024;

    private readonly Dictionary<ulong, Partial> _partials = [];
    private long _buffered;

    /// <summary>Feeds one frame; returns a message when this frame completed one.</summary>
    /// <exception cref="ProtocolViolationException">Frames out of order for their request id, or a malformed first frame.</exception>
    public ReceivedMessage? Add(FrameHeader header, ReadOnlySequence<byte> body)
    {
        bool first = header.Flags.HasFlag(FrameFlags.First), last = header.Flags.HasFlag(FrameFlags.Last);
        _partials.TryGetValue(header.RequestId, out var partial);
        if (first)
        {
            if (partial is not null) throw new ProtocolViolationException($"request {header.RequestId} started twice");
            partial = Start(header, ref body);
            _partials[header.RequestId] = partial;
        }
        else if (partial is null)
        {
            throw new ProtocolViolationException($"frame for request {header.RequestId}, which has not started");
        }
        partial.Append(body);
        if (!last) return null;
        _partials.Remove(header.RequestId);
        return Finish(partial);
    }

    /// <summary>Drops a partial message (its request was cancelled).</summary>
    public void Discard(ulong requestId)
    {
        if (_partials.Remove(requestId, out var partial)) Release(partial);
    }

    public void Dispose()
    {
        foreach (var p in _partials.Values) Release(p);
        _partials.Clear();
    }

    private Partial Start(FrameHeader header, ref ReadOnlySequence<byte> body)
    {
        if (body.Length < 4) throw new ProtocolViolationException($"first frame of request {header.RequestId} is shorter than its envelope length");
        Span<byte> lengthBytes = stackalloc byte[4];
        body.Slice(0, 4).CopyTo(lengthBytes);
        uint envelopeLength = BinaryPrimitives.ReadUInt32LittleEndian(lengthBytes);
        if (envelopeLength > MaxEnvelopeBytes || envelopeLength > body.Length - 4)
            throw new ProtocolViolationException($"envelope of request {header.RequestId} claims {envelopeLength} bytes; it must fit its first frame and {MaxEnvelopeBytes} bytes");
        var envelope = body.Slice(4, envelopeLength).ToArray();
        body = body.Slice(4 + envelopeLength);
        ulong payloadLength = PayloadLength(header.Kind, envelope);
        var partial = new Partial(header.Kind, header.RequestId, envelope, payloadLength);
        if (payloadLength + (ulong)envelope.Length > (ulong)maxMessageBytes)
            partial.Refuse($"message of {payloadLength + (ulong)envelope.Length} bytes exceeds the {maxMessageBytes}-byte limit", StatusCode.ResourceExhausted);
        else if (_buffered + (long)payloadLength > maxBufferedBytes)
            partial.Refuse($"the connection already buffers {_buffered} bytes of unfinished messages; limit {maxBufferedBytes}", StatusCode.ResourceExhausted);
        else
        {
            partial.Payload = PooledBuffer.Rent((int)payloadLength);
            _buffered += (long)payloadLength;
        }
        return partial;
    }

    private static ulong PayloadLength(FrameKind kind, byte[] envelope)
    {
        try
        {
            return kind == FrameKind.Request ? RequestEnvelope.Parser.ParseFrom(envelope).PayloadLength : ResponseEnvelope.Parser.ParseFrom(envelope).PayloadLength;
        }
        catch (Google.Protobuf.InvalidProtocolBufferException e)
        {
            throw new ProtocolViolationException($"envelope is not valid protobuf: {e.Message}");
        }
    }

    private ReceivedMessage Finish(Partial partial)
    {
        if (partial.Error is not null)
            return new ReceivedMessage(partial.Kind, partial.RequestId, partial.Envelope, PooledBuffer.Empty, partial.Error) { ErrorStatus = partial.ErrorStatus };
        _buffered -= partial.Payload!.Length;
        if ((ulong)partial.Received != partial.ExpectedPayload)
        {
            partial.Payload.Dispose();
            return new ReceivedMessage(partial.Kind, partial.RequestId, partial.Envelope, PooledBuffer.Empty,
                $"payload has {partial.Received} bytes; the envelope announced {partial.ExpectedPayload}");
        }
        return new ReceivedMessage(partial.Kind, partial.RequestId, partial.Envelope, partial.Payload, null);
    }

    private void Release(Partial partial)
    {
        if (partial.Payload is null) return;
        _buffered -= partial.Payload.Length;
        partial.Payload.Dispose();
    }

    private sealed class Partial(FrameKind kind, ulong requestId, byte[] envelope, ulong expectedPayload)
    {
        public FrameKind Kind { get; } = kind;

        public ulong RequestId { get; } = requestId;

        public byte[] Envelope { get; } = envelope;

        public ulong ExpectedPayload { get; } = expectedPayload;

        public PooledBuffer? Payload { get; set; }

        public long Received { get; private set; }

        public string? Error { get; private set; }

        public StatusCode ErrorStatus { get; private set; }

        public void Refuse(string error, StatusCode status)
        {
            Error = error;
            ErrorStatus = status;
        }

        public void Append(ReadOnlySequence<byte> bytes)
        {
            if (Error is not null) return;
            if ((ulong)(Received + bytes.Length) > ExpectedPayload)
            {
                // Keep counting so Finish reports the mismatch; stop copying.
                Received += bytes.Length;
                return;
            }
            bytes.CopyTo(Payload!.Span.Slice((int)Received));
            Received += bytes.Length;
        }
    }
}
