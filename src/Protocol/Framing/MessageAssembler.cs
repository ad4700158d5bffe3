using System.Buffers;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Protocol.Framing;

/// <summary>
/// Rebuilds messages from interleaved frames, one partial message per request id. The envelope
/// (u32 length + protobuf, at most 256 KiB) must come whole at the start of the message's first frame;
/// payload bytes are copied into the message's buffer as they arrive, so no frame ever has to be
/// buffered whole. Payload buffers count against a per-connection budget so a peer cannot reserve
/// unbounded memory by announcing large payloads it never sends. An oversized message is refused (its
/// later bytes are discarded) and reported once it ends.
/// </summary>
internal sealed class MessageAssembler(int maxMessageBytes, long maxBufferedBytes) : IDisposable
{
    /// <summary>Largest envelope (protobuf header of a call) accepted.</summary>
    public const int MaxEnvelopeBytes = 256 * 1024;

    private readonly Dictionary<ulong, Partial> _partials = [];
    private long _buffered;

    /// <summary>Starts a message from its first frame's envelope bytes (without the u32 length prefix).</summary>
    /// <exception cref="ProtocolViolationException">The request id is already in use or the envelope is not protobuf.</exception>
    public void Start(FrameKind kind, ulong requestId, ReadOnlySequence<byte> envelopeBytes)
    {
        if (_partials.ContainsKey(requestId)) throw new ProtocolViolationException($"request {requestId} started twice");
        var envelope = envelopeBytes.ToArray();
        ulong payloadLength = PayloadLength(kind, envelope);
        var partial = new Partial(kind, requestId, envelope, payloadLength);
        if (payloadLength + (ulong)envelope.Length > (ulong)maxMessageBytes)
            partial.Refuse($"message of {payloadLength + (ulong)envelope.Length} bytes exceeds the {maxMessageBytes}-byte limit", StatusCode.ResourceExhausted);
        else if (_buffered + (long)payloadLength > maxBufferedBytes)
            partial.Refuse($"the connection already buffers {_buffered} bytes of unfinished messages; limit {maxBufferedBytes}", StatusCode.ResourceExhausted);
        else
        {
            partial.Payload = PooledBuffer.Rent((int)payloadLength);
            _buffered += (long)payloadLength;
        }
        _partials[requestId] = partial;
    }

    /// <summary>Adds payload bytes to a started message.</summary>
    /// <exception cref="ProtocolViolationException">The request has not started.</exception>
    public void Append(ulong requestId, ReadOnlySequence<byte> bytes) => Get(requestId).Append(bytes);

    /// <summary>Ends a message (its last frame is done) and returns it.</summary>
    /// <exception cref="ProtocolViolationException">The request has not started.</exception>
    public ReceivedMessage Complete(ulong requestId)
    {
        var partial = Get(requestId);
        _partials.Remove(requestId);
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

    /// <summary>Whether a message with this id is being received.</summary>
    public bool IsStarted(ulong requestId) => _partials.ContainsKey(requestId);

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

    private Partial Get(ulong requestId) =>
        _partials.TryGetValue(requestId, out var partial) ? partial : throw new ProtocolViolationException($"frame for request {requestId}, which has not started");

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
            if (Error is null && (ulong)(Received + bytes.Length) <= ExpectedPayload)
                bytes.CopyTo(Payload!.Span.Slice((int)Received));
            // Past the announced length nothing is copied; Complete reports the mismatch.
            Received += bytes.Length;
        }
    }
}
