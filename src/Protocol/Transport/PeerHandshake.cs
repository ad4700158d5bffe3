using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using MoEMesh.Protocol.Framing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Protocol.Transport;

/// <summary>
/// Proves each side holds the key of the PeerId it claims, in three frames: the dialer's hello (version,
/// key, nonce); the listener's hello with its signature over the transcript; the dialer's signature. The
/// transcript is "moemesh-handshake-v1", the signer's role, both nonces and both keys, so a proof cannot
/// be replayed on another connection or reflected back. A version mismatch or a bad proof is answered with
/// a handshake frame carrying the reason, then the connection closes.
/// </summary>
internal static class PeerHandshake
{
    private const int NonceBytes = 32;
    private const int MaxHandshakeBytes = 4096;

    /// <summary>Runs the dialer's side; returns the listener's identity.</summary>
    /// <exception cref="HandshakeException">The listener refused, failed its proof, or is not <paramref name="expected"/>.</exception>
    public static async Task<(PeerId Peer, byte[] PublicKey)> DialAsync(PipeReader input, PipeWriter output, PeerIdentity identity, PeerId? expected, CancellationToken cancellationToken)
    {
        var nonce = RandomNumberGenerator.GetBytes(NonceBytes);
        await WriteAsync(output, new Handshake { ProtocolVersion = PeerProtocolOptions.ProtocolVersion, PublicKey = ByteString.CopyFrom(identity.PublicKey), Nonce = ByteString.CopyFrom(nonce) }, cancellationToken);
        var hello = await ReadAsync(input, cancellationToken);
        if (hello.Error.Length > 0) throw new HandshakeException($"the peer refused the connection: {hello.Error}");
        CheckVersion(hello);
        var listenerKey = hello.PublicKey.ToByteArray();
        var listener = PeerId.FromPublicKey(listenerKey);
        if (expected is { } want && want != listener)
            throw new HandshakeException($"expected peer {want} but the key presented belongs to {listener}");
        var transcript = Transcript("listener", nonce, hello.Nonce.Span, identity.PublicKey, listenerKey);
        if (!PeerIdentity.Verify(listenerKey, transcript, hello.Signature.Span))
            throw new HandshakeException($"peer {listener} did not prove it holds its key");
        var proof = identity.Sign(Transcript("dialer", nonce, hello.Nonce.Span, identity.PublicKey, listenerKey));
        await WriteAsync(output, new Handshake { Signature = ByteString.CopyFrom(proof) }, cancellationToken);
        return (listener, listenerKey);
    }

    /// <summary>Runs the listener's side; returns the dialer's identity.</summary>
    /// <exception cref="HandshakeException">The dialer speaks another version or failed its proof (it has been told why).</exception>
    public static async Task<(PeerId Peer, byte[] PublicKey)> AcceptAsync(PipeReader input, PipeWriter output, PeerIdentity identity, CancellationToken cancellationToken)
    {
        var hello = await ReadAsync(input, cancellationToken);
        try
        {
            CheckVersion(hello);
        }
        catch (HandshakeException e)
        {
            await WriteAsync(output, new Handshake { ProtocolVersion = PeerProtocolOptions.ProtocolVersion, Error = e.Message }, cancellationToken);
            throw;
        }
        if (hello.Nonce.Length != NonceBytes) throw new HandshakeException($"the dialer's nonce has {hello.Nonce.Length} bytes; expected {NonceBytes}");
        var dialerKey = hello.PublicKey.ToByteArray();
        var nonce = RandomNumberGenerator.GetBytes(NonceBytes);
        var signature = identity.Sign(Transcript("listener", hello.Nonce.Span, nonce, dialerKey, identity.PublicKey));
        await WriteAsync(output, new Handshake
        {
            ProtocolVersion = PeerProtocolOptions.ProtocolVersion,
            PublicKey = ByteString.CopyFrom(identity.PublicKey),
            Nonce = ByteString.CopyFrom(nonce),
            Signature = ByteString.CopyFrom(signature),
        }, cancellationToken);
        var proof = await ReadAsync(input, cancellationToken);
        var dialer = PeerId.FromPublicKey(dialerKey);
        if (!PeerIdentity.Verify(dialerKey, Transcript("dialer", hello.Nonce.Span, nonce, dialerKey, identity.PublicKey), proof.Signature.Span))
        {
            await WriteAsync(output, new Handshake { Error = $"your proof does not verify against the key of {dialer}" }, cancellationToken);
            throw new HandshakeException($"peer {dialer} did not prove it holds its key");
        }
        return (dialer, dialerKey);
    }

    private static void CheckVersion(Handshake hello)
    {
        if (hello.ProtocolVersion != PeerProtocolOptions.ProtocolVersion)
            throw new HandshakeException($"protocol version mismatch: the peer speaks version {hello.ProtocolVersion}, this node speaks {PeerProtocolOptions.ProtocolVersion}");
    }

    private static byte[] Transcript(string role, ReadOnlySpan<byte> dialerNonce, ReadOnlySpan<byte> listenerNonce, ReadOnlySpan<byte> dialerKey, ReadOnlySpan<byte> listenerKey)
    {
        var buffer = new ArrayBufferWriter<byte>();
        buffer.Write(Encoding.ASCII.GetBytes("moemesh-handshake-v1\0" + role + "\0"));
        buffer.Write(dialerNonce);
        buffer.Write(listenerNonce);
        buffer.Write(dialerKey);
        buffer.Write(listenerKey);
        return buffer.WrittenSpan.ToArray();
    }

    private static async Task WriteAsync(PipeWriter output, Handshake message, CancellationToken cancellationToken)
    {
        var body = message.ToByteArray();
        new FrameHeader(FrameKind.Handshake, FrameFlags.None, 0, body.Length).Write(output.GetSpan(FrameHeader.Size));
        output.Advance(FrameHeader.Size);
        output.Write(body);
        await output.FlushAsync(cancellationToken);
    }

    private static async Task<Handshake> ReadAsync(PipeReader input, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            FrameHeader header;
            ReadOnlySequence<byte> body;
            bool complete;
            try
            {
                complete = FrameHeader.TryRead(ref buffer, out header, out body);
            }
            catch (ProtocolViolationException e)
            {
                input.AdvanceTo(buffer.Start, buffer.End);
                throw new HandshakeException($"not a MoEMesh peer ({e.Message})", notAPeer: true);
            }
            if (complete)
            {
                try
                {
                    if (header.Kind != FrameKind.Handshake) throw new HandshakeException($"expected a handshake frame, got {header.Kind}", notAPeer: true);
                    if (header.BodyLength > MaxHandshakeBytes) throw new HandshakeException($"handshake frame of {header.BodyLength} bytes exceeds {MaxHandshakeBytes}");
                    return Handshake.Parser.ParseFrom(body);
                }
                catch (InvalidProtocolBufferException e)
                {
                    throw new HandshakeException($"handshake frame is not valid protobuf: {e.Message}", notAPeer: true);
                }
                finally
                {
                    input.AdvanceTo(buffer.Start);
                }
            }
            input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted) throw new HandshakeException("the peer closed the connection during the handshake", notAPeer: true);
        }
    }
}

/// <summary>The connection handshake failed; the message says why.</summary>
public sealed class HandshakeException(string message, bool notAPeer = false) : Exception($"Handshake failed: {message}.")
{
    /// <summary>
    /// What answered did not speak the handshake at all (it closed, or sent no handshake frame): a wrong port
    /// or a TLS mismatch, rather than a peer that refused.
    /// </summary>
    public bool NotAPeer { get; } = notAPeer;
}
