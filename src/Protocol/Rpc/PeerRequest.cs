using Google.Protobuf;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Protocol.Rpc;

/// <summary>
/// A call: method, protobuf header, raw payload and the absolute deadline. On the server the payload
/// lives in a pooled buffer that is released once the handler has answered, so a handler must not keep
/// <see cref="Payload"/> beyond its own completion.
/// </summary>
public sealed class PeerRequest : IDisposable
{
    private PooledBuffer? _owned;

    /// <summary>Creates a request.</summary>
    public PeerRequest(string method, ReadOnlyMemory<byte> header, ReadOnlyMemory<byte> payload, DateTimeOffset deadline, PooledBuffer? owned = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(method);
        Method = method;
        Header = header;
        Payload = payload;
        Deadline = deadline;
        _owned = owned;
    }

    /// <summary>Creates a request with a protobuf header.</summary>
    public static PeerRequest Create(string method, IMessage? header, ReadOnlyMemory<byte> payload, DateTimeOffset deadline) =>
        new(method, header?.ToByteArray() ?? ReadOnlyMemory<byte>.Empty, payload, deadline);

    /// <summary>The method name ("expert.forward", "dht.find").</summary>
    public string Method { get; }

    /// <summary>Serialized method-specific protobuf header.</summary>
    public ReadOnlyMemory<byte> Header { get; }

    /// <summary>Raw bytes beside the header (tensors).</summary>
    public ReadOnlyMemory<byte> Payload { get; }

    /// <summary>When the caller stops waiting. A server drops work that has not started by then.</summary>
    public DateTimeOffset Deadline { get; }

    /// <summary>The authenticated caller; set by the server side of a transport.</summary>
    public PeerId Caller { get; init; }

    /// <summary>
    /// The IP address the caller's connection comes from, when the transport knows it (set by the server
    /// side). Unlike a PeerId, which anyone can make more of, addresses are scarce: limits that must hold
    /// against many identities are kept per address.
    /// </summary>
    public System.Net.IPAddress? RemoteAddress { get; init; }

    /// <summary>
    /// Whether the caller's connection came through a relay (set by the server side). Then <see cref="RemoteAddress"/>
    /// is the relay's, not the caller's, and nothing about the caller's own reachability can be learnt from it.
    /// </summary>
    public bool ThroughRelay { get; init; }

    /// <summary>Parses the header.</summary>
    /// <exception cref="PeerRpcException">InvalidArgument when the header is not a valid <typeparamref name="T"/>.</exception>
    public T ParseHeader<T>(MessageParser<T> parser) where T : IMessage<T> => Parse(parser, Header, "header");

    /// <summary>
    /// Parses the payload as a protobuf message: for methods whose message can outgrow the envelope's
    /// 256 KiB (a DHT store of many records).
    /// </summary>
    /// <exception cref="PeerRpcException">InvalidArgument when the payload is not a valid <typeparamref name="T"/>.</exception>
    public T ParsePayload<T>(MessageParser<T> parser) where T : IMessage<T> => Parse(parser, Payload, "payload");

    private T Parse<T>(MessageParser<T> parser, ReadOnlyMemory<byte> bytes, string what) where T : IMessage<T>
    {
        try
        {
            return parser.ParseFrom(bytes.Span);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new PeerRpcException(Wire.StatusCode.InvalidArgument, $"{Method}: {what} is not a valid {typeof(T).Name}: {e.Message}");
        }
    }

    /// <summary>
    /// Takes ownership of the payload's buffer, so a handler can keep the bytes beyond its own completion
    /// (or send them back) without copying; the caller must dispose what it takes. A request whose payload
    /// is not pooled returns a pooled copy.
    /// </summary>
    public PooledBuffer TakePayload()
    {
        var owned = Interlocked.Exchange(ref _owned, null);
        return owned is not null && owned.Length == Payload.Length ? owned : CopyAndRelease(owned);
    }

    /// <summary>Releases a pooled payload that was not taken.</summary>
    public void Dispose() => Interlocked.Exchange(ref _owned, null)?.Dispose();

    private PooledBuffer CopyAndRelease(PooledBuffer? owned)
    {
        var copy = PooledBuffer.CopyOf(Payload.Span);
        owned?.Dispose();
        return copy;
    }
}
