using Google.Protobuf;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Protocol.Rpc;

/// <summary>
/// The answer to a call: a status with a message a person can act on, a protobuf header and a raw
/// payload. Expected network outcomes (timeout, unreachable) are responses too, never exceptions.
/// Dispose releases a pooled payload.
/// </summary>
public sealed class PeerResponse : IDisposable
{
    private readonly IDisposable? _owned;

    /// <summary>Creates a response.</summary>
    public PeerResponse(StatusCode status, string message, ReadOnlyMemory<byte> header, ReadOnlyMemory<byte> payload, IDisposable? owned = null)
    {
        Status = status;
        Message = message;
        Header = header;
        Payload = payload;
        _owned = owned;
    }

    /// <summary>The outcome.</summary>
    public StatusCode Status { get; }

    /// <summary>Why, when the status is not Ok.</summary>
    public string Message { get; }

    /// <summary>Serialized method-specific protobuf header.</summary>
    public ReadOnlyMemory<byte> Header { get; }

    /// <summary>Raw bytes beside the header.</summary>
    public ReadOnlyMemory<byte> Payload { get; }

    /// <summary>Whether the status is Ok.</summary>
    public bool IsOk => Status == StatusCode.Ok;

    /// <summary>A successful response; <paramref name="owned"/> is disposed with the response.</summary>
    public static PeerResponse Ok(IMessage? header = null, ReadOnlyMemory<byte> payload = default, IDisposable? owned = null) =>
        new(StatusCode.Ok, "", header?.ToByteArray() ?? ReadOnlyMemory<byte>.Empty, payload, owned);

    /// <summary>A failed response.</summary>
    public static PeerResponse Error(StatusCode status, string message) =>
        new(status, message, ReadOnlyMemory<byte>.Empty, ReadOnlyMemory<byte>.Empty);

    /// <summary>Parses the header.</summary>
    /// <exception cref="PeerRpcException">The header is not a valid <typeparamref name="T"/>.</exception>
    public T ParseHeader<T>(MessageParser<T> parser) where T : IMessage<T> => Parse(parser, Header, "header");

    /// <summary>Parses the payload as a protobuf message (for answers that can outgrow the envelope, as a DHT find's).</summary>
    /// <exception cref="PeerRpcException">Internal when the payload is not a valid <typeparamref name="T"/>.</exception>
    public T ParsePayload<T>(MessageParser<T> parser) where T : IMessage<T> => Parse(parser, Payload, "payload");

    private static T Parse<T>(MessageParser<T> parser, ReadOnlyMemory<byte> bytes, string what) where T : IMessage<T>
    {
        try
        {
            return parser.ParseFrom(bytes.Span);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new PeerRpcException(StatusCode.Internal, $"response {what} is not a valid {typeof(T).Name}: {e.Message}");
        }
    }

    /// <inheritdoc />
    public override string ToString() => IsOk ? $"Ok ({Payload.Length} payload bytes)" : $"{Status}: {Message}";

    /// <summary>Releases a pooled payload.</summary>
    public void Dispose() => _owned?.Dispose();
}
