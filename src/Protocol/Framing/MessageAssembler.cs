using System.Buffers;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Protocol.Framing;

/// <summary>
/// Rebuilds messages from interleaved frames, one partial message per request id. The envelope
/// (u32 length + protobuf, at most 256 KiB) must come whole at the start of the message's first frame;
/// payload bytes are copied into the message's buffer as they arrive, so no frame ever has to be
/// buffered whole. Everything an unfinished message holds (its envelope, <see cref="PartialOverhead"/>, and
/// its announced payload, whose buffer is allocated only when its first byte arrives) counts against a
/// per-connection budget, and at most <c>maxUnfinished</c> messages may
/// be unfinished at once, so a peer cannot reserve unbounded memory by starting messages it never ends;
/// exceeding either is a protocol violation. A message whose announced size exceeds the limit, or whose
/// payload would not fit the budget, is refused (its later bytes are discarded) and reported once it ends.
/// A message still unfinished <c>timeout</c> after its first frame is a violation too
/// (<see cref="ThrowIfStalled"/>).
/// </summary>
internal sealed class MessageAssembler(int maxMessageBytes, long maxBufferedBytes, int maxUnfinished = 1024, TimeSpan? timeout = null, TimeProvider? time = null)
    : IDisposable
{
    /// <summary>Largest envelope (protobuf header of a call) accepted.</summary>
    public const int MaxEnvelopeBytes = 256 * 1024;

    /// <summary>Bytes charged per unfinished message beyond its envelope and payload (its bookkeeping).</summary>
    public const int PartialOverhead = 1024;

    private readonly Dictionary<ulong, Partial> _partials = [];
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly TimeSpan _timeout = timeout ?? TimeSpan.FromMinutes(2);
    private long _buffered, _lastStallCheck;
    private volatile int _unfinished;

    /// <summary>Messages started and not yet ended (read from any thread).</summary>
    public int Unfinished => _unfinished;

    /// <summary>Bytes held for unfinished messages.</summary>
    public long Buffered => _buffered;

    /// <summary>Starts a message from its first frame's envelope bytes (without the u32 length prefix).</summary>
    /// <exception cref="ProtocolViolationException">
    /// The request id is already in use, the envelope is not protobuf, or the connection already holds as
    /// many unfinished messages, or as many bytes of them, as it may.
    /// </exception>
    public void Start(FrameKind kind, ulong requestId, ReadOnlySequence<byte> envelopeBytes)
    {
        if (_partials.ContainsKey(requestId)) throw new ProtocolViolationException($"request {requestId} started twice");
        if (_partials.Count >= maxUnfinished) throw new ProtocolViolationException($"{_partials.Count} messages are unfinished on this connection; limit {maxUnfinished}");
        long charge = envelopeBytes.Length + PartialOverhead;
        if (_buffered + charge > maxBufferedBytes)
            throw new ProtocolViolationException($"unfinished messages hold {_buffered} bytes on this connection; limit {maxBufferedBytes}");
        var envelope = envelopeBytes.ToArray();
        ulong payloadLength = PayloadLength(kind, envelope);
        var partial = new Partial(kind, requestId, envelope, payloadLength, _time.GetTimestamp());
        // Compared without adding, so a length near 2^64 cannot wrap past the check.
        if (envelope.Length > maxMessageBytes || payloadLength > (ulong)(maxMessageBytes - envelope.Length))
            partial.Refuse($"message of {(decimal)payloadLength + envelope.Length} bytes exceeds the {maxMessageBytes}-byte limit", StatusCode.ResourceExhausted);
        else if (_buffered + charge + (long)payloadLength > maxBufferedBytes)
            partial.Refuse($"the connection already buffers {_buffered} bytes of unfinished messages; limit {maxBufferedBytes}", StatusCode.ResourceExhausted);
        else
        {
            // Reserved now, allocated when its first byte arrives: a message announced and never sent costs no memory.
            partial.Reserved = true;
            charge += (long)payloadLength;
        }
        partial.Charge = charge;
        _buffered += charge;
        _partials[requestId] = partial;
        _unfinished = _partials.Count;
    }

    /// <summary>
    /// Throws when a message has stayed unfinished longer than the timeout since its first frame (checked
    /// at most once a second, so calling it per read is cheap).
    /// </summary>
    /// <exception cref="ProtocolViolationException">A message is stalled.</exception>
    public void ThrowIfStalled()
    {
        long now = _time.GetTimestamp();
        if (_partials.Count == 0 || _time.GetElapsedTime(_lastStallCheck, now) < TimeSpan.FromSeconds(1)) return;
        _lastStallCheck = now;
        foreach (var p in _partials.Values)
            if (_time.GetElapsedTime(p.Started, now) > _timeout)
                throw new ProtocolViolationException($"request {p.RequestId} is still unfinished {_timeout.TotalSeconds:F0} s after its first frame");
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
        _unfinished = _partials.Count;
        _buffered -= partial.Charge;
        if (partial.Error is not null)
            return new ReceivedMessage(partial.Kind, partial.RequestId, partial.Envelope, PooledBuffer.Empty, partial.Error) { ErrorStatus = partial.ErrorStatus };
        var payload = partial.Payload ?? PooledBuffer.Empty;
        if ((ulong)partial.Received != partial.ExpectedPayload)
        {
            payload.Dispose();
            return new ReceivedMessage(partial.Kind, partial.RequestId, partial.Envelope, PooledBuffer.Empty,
                $"payload has {partial.Received} bytes; the envelope announced {partial.ExpectedPayload}");
        }
        return new ReceivedMessage(partial.Kind, partial.RequestId, partial.Envelope, payload, null);
    }

    /// <summary>Whether a message with this id is being received.</summary>
    public bool IsStarted(ulong requestId) => _partials.ContainsKey(requestId);

    /// <summary>Drops a partial message (its request was cancelled).</summary>
    public void Discard(ulong requestId)
    {
        if (_partials.Remove(requestId, out var partial)) Release(partial);
        _unfinished = _partials.Count;
    }

    public void Dispose()
    {
        foreach (var p in _partials.Values) Release(p);
        _partials.Clear();
        _unfinished = 0;
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
        _buffered -= partial.Charge;
        partial.Payload?.Dispose();
    }

    private sealed class Partial(FrameKind kind, ulong requestId, byte[] envelope, ulong expectedPayload, long started)
    {
        /// <summary>When its first frame arrived (a <see cref="TimeProvider"/> timestamp).</summary>
        public long Started { get; } = started;

        /// <summary>Bytes it counts against the connection's budget.</summary>
        public long Charge { get; set; }

        public FrameKind Kind { get; } = kind;

        public ulong RequestId { get; } = requestId;

        public byte[] Envelope { get; } = envelope;

        public ulong ExpectedPayload { get; } = expectedPayload;

        /// <summary>The payload's buffer, once its first byte arrived.</summary>
        public PooledBuffer? Payload { get; private set; }

        /// <summary>Whether the payload fits the budget and is charged to it (its buffer comes with its first byte).</summary>
        public bool Reserved { get; set; }

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
            if (Error is null && Reserved && (ulong)(Received + bytes.Length) <= ExpectedPayload)
            {
                Payload ??= PooledBuffer.Rent((int)ExpectedPayload);
                bytes.CopyTo(Payload.Span.Slice((int)Received));
            }
            // Past the announced length nothing is copied; Complete reports the mismatch.
            Received += bytes.Length;
        }
    }
}
