using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using MoEMesh.Protocol.Addressing;

namespace MoEMesh.Protocol.Transport;

/// <summary>
/// Says why a handshake with a peer address failed when the usual causes can be told apart: the address is
/// a node's HTTP port (it answers an HTTP request), or the two sides disagree about TLS. Runs only after a
/// failed handshake, with a short probe of its own.
/// </summary>
internal static class HandshakeDiagnosis
{
    private static readonly TimeSpan ProbeLimit = TimeSpan.FromSeconds(3);

    /// <summary>A hint to add to the failure's message, or null when none applies.</summary>
    public static async Task<string?> HintAsync(PeerAddress address, bool useTls, Exception failure, TimeProvider time, CancellationToken cancellationToken)
    {
        // Only when what answered did not speak the handshake: a peer that refused (version, PeerId, proof) said why itself.
        if (failure is not (HandshakeException { NotAPeer: true } or AuthenticationException or IOException)) return null;
        if (await AnswersHttpAsync(address, time, cancellationToken))
            return "it answers HTTP: that is a node's HTTP port, not its peer port (use the address the node listens on, its --listen)";
        return useTls
            ? "the peer does not complete a TLS handshake: it may run --no-tls while this side uses TLS (both sides must agree)"
            : "the peer may use TLS while this side runs --no-tls (both sides must agree)";
    }

    private static async Task<bool> AnswersHttpAsync(PeerAddress address, TimeProvider time, CancellationToken cancellationToken)
    {
        using var limit = new CancellationTokenSource(ProbeLimit, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, limit.Token);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(address.Host, address.Port, linked.Token);
            await socket.SendAsync("HEAD / HTTP/1.0\r\n\r\n"u8.ToArray(), linked.Token);
            var reply = new byte[5];
            int read = 0;
            while (read < reply.Length)
            {
                int n = await socket.ReceiveAsync(reply.AsMemory(read), linked.Token);
                if (n == 0) break;
                read += n;
            }
            return read == reply.Length && Encoding.ASCII.GetString(reply) == "HTTP/";
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return false;
        }
    }
}
