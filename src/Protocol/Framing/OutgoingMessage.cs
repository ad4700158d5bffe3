using System.Buffers;

namespace MoEMesh.Protocol.Framing;

/// <summary>
/// A message waiting to be written: a prefix (u32 envelope length + envelope, or a control body) and an
/// optional payload, sent as one or more frames. <see cref="Sent"/> completes once every byte is handed to
/// the transport, so the owner of the payload may release it.
/// </summary>
internal sealed class OutgoingMessage
{
    private int _position;

    public OutgoingMessage(FrameKind kind, ulong requestId, ReadOnlyMemory<byte> prefix, ReadOnlyMemory<byte> payload = default)
    {
        Kind = kind;
        RequestId = requestId;
        Prefix = prefix;
        Payload = payload;
    }

    public FrameKind Kind { get; }

    public ulong RequestId { get; }

    public ReadOnlyMemory<byte> Prefix { get; }

    public ReadOnlyMemory<byte> Payload { get; }

    public int TotalLength => Prefix.Length + Payload.Length;

    public bool IsMultiFrame => Kind is FrameKind.Request or FrameKind.Response;

    public TaskCompletionSource Sent { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Set when the caller withdrew the message before it was fully written.</summary>
    public volatile bool Abandoned;

    public bool IsComplete => _position >= TotalLength;

    /// <summary>Writes the next frame (at most 1 MiB of body) into <paramref name="output"/>; returns bytes written.</summary>
    public int WriteNextFrame(IBufferWriter<byte> output) => WriteNextFrame(output, int.MaxValue, out _);

    /// <summary>
    /// Writes the next frame's header and envelope bytes into <paramref name="output"/>. When the frame's
    /// payload part is at least <paramref name="deferPayloadFrom"/> bytes it is not copied but returned in
    /// <paramref name="deferred"/>, for the caller to write straight to the stream after flushing
    /// <paramref name="output"/>. Returns the bytes written into <paramref name="output"/>.
    /// </summary>
    public int WriteNextFrame(IBufferWriter<byte> output, int deferPayloadFrom, out ReadOnlyMemory<byte> deferred)
    {
        deferred = default;
        int body = Math.Min(FrameHeader.MaxBody, TotalLength - _position);
        var flags = FrameFlags.None;
        if (IsMultiFrame)
        {
            if (_position == 0) flags |= FrameFlags.First;
            if (_position + body == TotalLength) flags |= FrameFlags.Last;
        }
        var header = new FrameHeader(Kind, flags, RequestId, body);
        header.Write(output.GetSpan(FrameHeader.Size));
        output.Advance(FrameHeader.Size);
        int end = _position + body;
        if (_position < Prefix.Length)
        {
            int fromPrefix = Math.Min(end, Prefix.Length) - _position;
            output.Write(Prefix.Span.Slice(_position, fromPrefix));
            _position += fromPrefix;
        }
        int written = FrameHeader.Size + body;
        if (_position < end)
        {
            int fromPayload = end - _position;
            var slice = Payload.Slice(_position - Prefix.Length, fromPayload);
            if (fromPayload >= deferPayloadFrom)
            {
                deferred = slice;
                written -= fromPayload;
            }
            else
            {
                output.Write(slice.Span);
            }
            _position += fromPayload;
        }
        return written;
    }
}
