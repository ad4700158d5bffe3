using System.ComponentModel.DataAnnotations;
using MoEMesh.Settings;

namespace MoEMesh.Protocol;

/// <summary>Limits and timings of the peer protocol. Every time limit is finite.</summary>
public sealed class PeerProtocolOptions : IValidatableObject
{
    /// <summary>Version spoken in the handshake; peers must match.</summary>
    public const uint ProtocolVersion = 1;

    /// <summary>Largest message (envelope plus payload). Default 64 MiB.</summary>
    [Bytes(Min = 1024)]
    public int MaxMessageBytes { get; set; } = 64 << 20;

    /// <summary>Bytes of unfinished incoming messages one connection may hold. Default 256 MiB.</summary>
    [Bytes]
    public long MaxBufferedBytesPerConnection { get; set; } = 256L << 20;

    /// <summary>Requests a server runs at once for one connection; more get ResourceExhausted. Default 1024.</summary>
    [Count]
    public int MaxConcurrentRequestsPerConnection { get; set; } = 1024;

    /// <summary>Connections a server holds at once; more are closed before TLS. Default 4096.</summary>
    [Count]
    public int MaxConnections { get; set; } = 4096;

    /// <summary>
    /// Connections a server holds from one network (an IPv4 /24, an IPv6 /48). Default 256 (a local testnet
    /// of a hundred nodes dials one node from one address).
    /// </summary>
    [Count]
    public int MaxConnectionsPerNetwork { get; set; } = 256;

    /// <summary>Connections still in TLS or the peer handshake, in all; more are closed before TLS. Default 128.</summary>
    [Count]
    public int MaxHandshakes { get; set; } = 128;

    /// <summary>Connections still in TLS or the peer handshake from one network (an IPv4 /24, an IPv6 /48). Default 32.</summary>
    [Count]
    public int MaxHandshakesPerNetwork { get; set; } = 32;

    /// <summary>Messages one connection may have started and not finished; more close it. Default 1024.</summary>
    [Count]
    public int MaxUnfinishedMessagesPerConnection { get; set; } = 1024;

    /// <summary>
    /// How long a message may take from its first frame to its last; longer closes the connection.
    /// Default 2 min (a 64 MiB message at 0.5 MB/s).
    /// </summary>
    [Duration]
    public TimeSpan MessageTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Bytes queued to send on one connection and not yet written: a peer that stops reading while it keeps
    /// asking is cut off here. Default 256 MiB.
    /// </summary>
    [Bytes]
    public long MaxQueuedBytesPerConnection { get; set; } = 256L << 20;

    /// <summary>Messages and control frames queued to send on one connection; more close it. Default 4096.</summary>
    [Count(Min = 16)]
    public int MaxQueuedMessagesPerConnection { get; set; } = 4096;

    /// <summary>TLS 1.3 with certificates made from node keys. On by default; switch off for loopback testnets.</summary>
    public bool UseTls { get; set; } = true;

    /// <summary>TCP connect limit. Default 3 s.</summary>
    [Duration]
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>TLS plus peer handshake limit. Default 5 s.</summary>
    [Duration]
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A pooled connection idle this long is pinged. Default 15 s.</summary>
    [Duration]
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>A ping unanswered this long closes the connection. Default 10 s.</summary>
    [Duration]
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A pooled connection unused this long is closed; a served connection from which nothing has arrived
    /// this long (not even a keep-alive ping) and to which nothing waits to be sent is closed. Default 2 min.
    /// </summary>
    [Duration]
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>First wait after a failed connect; doubles per failure up to <see cref="ReconnectBackoffMax"/>. Default 1 s.</summary>
    [Duration]
    public TimeSpan ReconnectBackoff { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait between connect attempts. Default 30 s.</summary>
    [Duration]
    public TimeSpan ReconnectBackoffMax { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The longest a served request may run, whatever deadline its caller sends: a caller's deadline beyond
    /// it is cut to it. Default 10 min (a model upload's chunk or a long expert call fits well inside).
    /// </summary>
    [Duration]
    public TimeSpan MaxRequestTime { get; set; } = TimeSpan.FromMinutes(10);

    /// <inheritdoc />
    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext context)
    {
        if (MaxBufferedBytesPerConnection < MaxMessageBytes)
            yield return new($"must hold at least one message (MaxMessageBytes, {MaxMessageBytes}); got {MaxBufferedBytesPerConnection}", [nameof(MaxBufferedBytesPerConnection)]);
        if (MaxQueuedBytesPerConnection < MaxMessageBytes)
            yield return new($"must hold at least one message (MaxMessageBytes, {MaxMessageBytes}); got {MaxQueuedBytesPerConnection}", [nameof(MaxQueuedBytesPerConnection)]);
    }
}
