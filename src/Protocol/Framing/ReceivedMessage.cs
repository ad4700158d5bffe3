namespace MoEMesh.Protocol.Framing;

/// <summary>A whole request or response as it arrived: the envelope bytes and the payload.</summary>
internal sealed class ReceivedMessage(FrameKind kind, ulong requestId, byte[] envelope, PooledBuffer payload, string? error) : IDisposable
{
    public FrameKind Kind { get; } = kind;

    public ulong RequestId { get; } = requestId;

    /// <summary>Serialized RequestEnvelope or ResponseEnvelope.</summary>
    public byte[] Envelope { get; } = envelope;

    public PooledBuffer Payload { get; } = payload;

    /// <summary>Why the message cannot be used (too large, malformed), or null when it can.</summary>
    public string? Error { get; } = error;

    /// <summary>Status for <see cref="Error"/>.</summary>
    public Wire.StatusCode ErrorStatus { get; init; } = Wire.StatusCode.InvalidArgument;

    public void Dispose() => Payload.Dispose();
}
