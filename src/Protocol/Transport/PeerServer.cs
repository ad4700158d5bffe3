using System.IO.Pipelines;
using System.Net.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Protocol.Framing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;

namespace MoEMesh.Protocol.Transport;

/// <summary>
/// Serves accepted peer connections, from <see cref="PeerListener"/>'s sockets or from a host's pipes:
/// admission (connection and handshake limits, in all and per address, checked before any TLS work),
/// TLS (when on), the handshake, then requests routed through a <see cref="PeerRouter"/>. Whatever one connection sends (garbage, a wrong version,
/// a failed proof) ends that connection only; the server keeps serving the others.
/// </summary>
public sealed partial class PeerServer(PeerIdentity identity, PeerRouter router, PeerProtocolOptions options, TimeProvider time, ILogger<PeerServer>? logger = null)
{
    private readonly ILogger _logger = logger ?? (ILogger)NullLogger.Instance;
    private readonly ConnectionAdmission _admission = new(options);
    private long _accepted, _refused;

    /// <summary>This node's identity.</summary>
    public PeerId PeerId => identity.PeerId;

    /// <summary>Connections that completed the handshake.</summary>
    public long ConnectionsAccepted => Interlocked.Read(ref _accepted);

    /// <summary>Connections refused at admission or closed during TLS or the handshake.</summary>
    public long ConnectionsRefused => Interlocked.Read(ref _refused);

    /// <summary>Connections open now (handshaking or established).</summary>
    public int OpenConnections => _admission.Connections;

    /// <summary>Connections in TLS or the peer handshake now.</summary>
    public int HandshakesInProgress => _admission.Handshaking;

    /// <summary>
    /// Serves one accepted connection given as a duplex pipe until it closes: the entry point for hosts
    /// whose transport hands over pipes (Kestrel's connection layer; see the node's KestrelPeerListener).
    /// </summary>
    public Task HandlePipeAsync(IDuplexPipe transport, System.Net.EndPoint? remote, CancellationToken closed) =>
        ServeAsync(remote, closed, async token =>
            options.UseTls
                ? Secured(await TlsLayer.AuthenticateAsync(new DuplexPipeStream(transport), asServer: true, identity, token))
                : (transport.Input, transport.Output, null, null));

    /// <summary>Serves one accepted socket stream until it closes (see <see cref="PeerListener"/>).</summary>
    public Task HandleStreamAsync(Stream stream, System.Net.EndPoint? remote, CancellationToken aborted) =>
        ServeAsync(remote, aborted, async token =>
            options.UseTls
                ? Secured(await TlsLayer.AuthenticateAsync(stream, asServer: true, identity, token))
                : (StreamPipes.Reader(stream), StreamPipes.Writer(stream), null, stream));

    private static (PipeReader, PipeWriter, SslStream?, Stream?) Secured(SslStream ssl) => (StreamPipes.Reader(ssl), StreamPipes.Writer(ssl), ssl, ssl);

    /// <summary>TLS (through <paramref name="open"/>), the handshake, then requests until the connection closes.</summary>
    private async Task ServeAsync(System.Net.EndPoint? remote, CancellationToken aborted, Func<CancellationToken, Task<(PipeReader Input, PipeWriter Output, SslStream? Ssl, Stream? Direct)>> open)
    {
        using var lease = _admission.TryAdmit((remote as System.Net.IPEndPoint)?.Address, out var refusal);
        if (lease is null)
        {
            // Closed before TLS: a flood of dials costs no handshake and no signature.
            Interlocked.Increment(ref _refused);
            LogRefused(_logger, remote?.ToString() ?? "unknown", refusal!);
            return;
        }
        SslStream? ssl = null;
        FrameChannel? channel = null;
        try
        {
            PipeReader input;
            PipeWriter output;
            Stream? direct;
            PeerId caller;
            using (var limit = new CancellationTokenSource(options.HandshakeTimeout, time))
            using (var token = CancellationTokenSource.CreateLinkedTokenSource(limit.Token, aborted))
            {
                (input, output, ssl, direct) = await open(token.Token);
                var (peer, key) = await PeerHandshake.AcceptAsync(input, output, identity, token.Token);
                if (ssl is not null) TlsLayer.RequireSameKey(ssl, key, peer);
                caller = peer;
            }
            lease.Established();
            Interlocked.Increment(ref _accepted);
            var connection = new ServerConnection(caller, (remote as System.Net.IPEndPoint)?.Address, router, options, time);
            channel = new FrameChannel(input, output, connection, [FrameKind.Request], options, time, ssl, direct);
            connection.Attach(channel);
            channel.Start();
            using var registration = aborted.Register(static c => ((FrameChannel)c!).Close("the server is shutting down"), channel);
            await channel.Completion;
        }
        catch (Exception e) when (e is HandshakeException or System.Security.Authentication.AuthenticationException or IOException
                                       or OperationCanceledException or InvalidOperationException)
        {
            Interlocked.Increment(ref _refused);
            LogRefused(_logger, remote?.ToString() ?? "unknown", e.Message);
        }
        finally
        {
            if (channel is not null) await channel.DisposeAsync();
            else if (ssl is not null) await ssl.DisposeAsync();
        }
    }

    [LoggerMessage(EventId = 200, Level = LogLevel.Debug, Message = "Connection from {Remote} refused: {Reason}")]
    private static partial void LogRefused(ILogger logger, string remote, string reason);
}
