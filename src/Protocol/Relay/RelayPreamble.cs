using System.Buffers.Binary;
using System.Text;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Protocol.Relay;

/// <summary>What a connection that opens with the relay preamble asks of the relay.</summary>
public enum RelayRequestKind : byte
{
    /// <summary>A caller: splice me to the peer whose PeerId hash follows.</summary>
    Connect = 1,

    /// <summary>A relayed host: here is the connection for the circuit whose id follows.</summary>
    Accept = 2,
}

/// <summary>
/// The bytes that open a connection to a relay, before any TLS: the magic <c>MMR1</c>, a kind, then the
/// target's 32-byte PeerId hash (Connect) or a 16-byte circuit id (Accept). The relay answers one byte
/// (0 spliced, 1 refused), a u16 length and a UTF-8 reason; after a 0 every byte is the other side's.
/// The magic's second byte (0x4D) can start neither a TLS record (0x16 0x03) nor a plain handshake frame
/// (whose little-endian length is at most 4108), so a listener tells the three apart from four bytes.
/// </summary>
public static class RelayPreamble
{
    /// <summary>The first four bytes.</summary>
    public static ReadOnlySpan<byte> Magic => "MMR1"u8;

    /// <summary>Bytes of a circuit id.</summary>
    public const int CircuitIdBytes = 16;

    private const int MaxReasonBytes = 512;

    /// <summary>Whether <paramref name="first"/> (four bytes) opens a relay request.</summary>
    public static bool Opens(ReadOnlySpan<byte> first) => first.SequenceEqual(Magic);

    /// <summary>Writes a caller's request to be spliced to <paramref name="target"/>, magic included.</summary>
    public static ValueTask WriteConnectAsync(Stream stream, PeerId target, CancellationToken cancellationToken) =>
        stream.WriteAsync(Concat([.. Magic, (byte)RelayRequestKind.Connect], target.Hash), cancellationToken);

    /// <summary>Writes a host's answer to circuit <paramref name="circuit"/>, magic included.</summary>
    public static ValueTask WriteAcceptAsync(Stream stream, ReadOnlySpan<byte> circuit, CancellationToken cancellationToken) =>
        stream.WriteAsync(Concat([.. Magic, (byte)RelayRequestKind.Accept], circuit), cancellationToken);

    /// <summary>Reads what follows the magic: the kind and its argument.</summary>
    /// <exception cref="IOException">The stream ended or the kind is unknown.</exception>
    public static async Task<(RelayRequestKind Kind, byte[] Argument)> ReadRequestAsync(Stream stream, CancellationToken cancellationToken)
    {
        var kind = new byte[1];
        await stream.ReadExactlyAsync(kind, cancellationToken);
        int length = (RelayRequestKind)kind[0] switch
        {
            RelayRequestKind.Connect => 32,
            RelayRequestKind.Accept => CircuitIdBytes,
            _ => throw new IOException($"unknown relay request kind {kind[0]}"),
        };
        var argument = new byte[length];
        await stream.ReadExactlyAsync(argument, cancellationToken);
        return ((RelayRequestKind)kind[0], argument);
    }

    /// <summary>Writes the relay's answer: spliced (null reason) or refused with a reason.</summary>
    public static ValueTask WriteAnswerAsync(Stream stream, string? refusal, CancellationToken cancellationToken)
    {
        var reason = Encoding.UTF8.GetBytes(refusal ?? "");
        if (reason.Length > MaxReasonBytes) reason = reason[..MaxReasonBytes];
        var answer = new byte[3 + reason.Length];
        answer[0] = refusal is null ? (byte)0 : (byte)1;
        BinaryPrimitives.WriteUInt16LittleEndian(answer.AsSpan(1), (ushort)reason.Length);
        reason.CopyTo(answer, 3);
        return stream.WriteAsync(answer, cancellationToken);
    }

    /// <summary>Reads the relay's answer: null once spliced, else the reason it refused.</summary>
    /// <exception cref="IOException">The stream ended or the answer is malformed.</exception>
    public static async Task<string?> ReadAnswerAsync(Stream stream, CancellationToken cancellationToken)
    {
        var head = new byte[3];
        await stream.ReadExactlyAsync(head, cancellationToken);
        int length = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(1));
        if (head[0] > 1 || length > MaxReasonBytes) throw new IOException("the relay's answer is malformed");
        var reason = new byte[length];
        await stream.ReadExactlyAsync(reason, cancellationToken);
        return head[0] == 0 ? null : Encoding.UTF8.GetString(reason);
    }

    private static byte[] Concat(ReadOnlySpan<byte> head, ReadOnlySpan<byte> tail) => [.. head, .. tail];
}
