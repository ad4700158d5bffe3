using System.IO.Pipelines;
using System.Net.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Protocol.Framing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Relay;
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
    /// Splices connections that open with the relay preamble, when this node relays; null refuses them.
    /// Set before the listener starts.
    /// </summary>
    public RelayService? Relay { get; set; }

    /// <summary>
    /// Serves one accepted connection given as a duplex pipe until it closes: the entry point for hosts
    /// whose transport hands over pipes (Kestrel's connection layer; see the node's KestrelPeerListener).
    /// </summary>
    public Task HandlePipeAsync(IDuplexPipe transport, System.Net.EndPoint? remote, CancellationToken closed) =>
        ServeAsync(remote, throughRelay: false, closed, async token =>
        {
            // The first four bytes are looked at, not taken: TLS or the handshake reads them again.
            var first = await transport.Input.ReadAtLeastAsync(RelayPreamble.Magic.Length, token);
            bool relay = first.Buffer.Length >= RelayPreamble.Magic.Length && RelayPreamble.Opens(System.Buffers.BuffersExtensions.ToArray(first.Buffer.Slice(0, RelayPreamble.Magic.Length)));
            transport.Input.AdvanceTo(first.Buffer.Start);
            if (relay)
            {
                var stream = new DuplexPipeStream(transport);
                await stream.ReadExactlyAsync(new byte[RelayPreamble.Magic.Length], token);
                return Opened.RelayRequest(stream);
            }
            return options.UseTls
                ? Secured(await TlsLayer.AuthenticateAsync(new DuplexPipeStream(transport), asServer: true, identity, token))
                : new Opened(transport.Input, transport.Output, null, null, null);
        });

    /// <summary>Serves one accepted socket stream until it closes (see <see cref="PeerListener"/>).</summary>
    public Task HandleStreamAsync(Stream stream, System.Net.EndPoint? remote, CancellationToken aborted) => HandleStreamAsync(stream, remote, throughRelay: false, aborted);

    /// <summary>
    /// Serves one stream until it closes; <paramref name="throughRelay"/> marks a circuit a relay spliced (see
    /// <see cref="RelayReservation"/>): its requests say so, and it may not itself ask to be relayed.
    /// </summary>
    public Task HandleStreamAsync(Stream stream, System.Net.EndPoint? remote, bool throughRelay, CancellationToken aborted) =>
        ServeAsync(remote, throughRelay, aborted, async token =>
        {
            var first = new byte[RelayPreamble.Magic.Length];
            await stream.ReadExactlyAsync(first, token);
            if (RelayPreamble.Opens(first)) return Opened.RelayRequest(stream);
            var opened = new PrefixedStream(first, stream);
            return options.UseTls
                ? Secured(await TlsLayer.AuthenticateAsync(opened, asServer: true, identity, token))
                : new Opened(StreamPipes.Reader(opened), StreamPipes.Writer(opened), null, opened, null);
        });

    private static Opened Secured(SslStream ssl) => new(StreamPipes.Reader(ssl), StreamPipes.Writer(ssl), ssl, ssl, null);

    /// <summary>A connection past its first bytes: pipes for the peer protocol (over TLS when on), or a relay request's raw stream.</summary>
    private sealed record Opened(PipeReader? Input, PipeWriter? Output, SslStream? Ssl, Stream? Direct, Stream? Relay)
    {
        public static Opened RelayRequest(Stream stream) => new(null, null, null, null, stream);
    }

    /// <summary>TLS (through <paramref name="open"/>), the handshake, then requests until the connection closes; or a relay request.</summary>
    private async Task ServeAsync(System.Net.EndPoint? remote, bool throughRelay, CancellationToken aborted, Func<CancellationToken, Task<Opened>> open)
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
            Opened opened;
            PeerId caller;
            (RelayRequestKind Kind, byte[] Argument) relayRequest = (default, []);
            using (var limit = new CancellationTokenSource(options.HandshakeTimeout, time))
            using (var token = CancellationTokenSource.CreateLinkedTokenSource(limit.Token, aborted))
            {
                opened = await open(token.Token);
                ssl = opened.Ssl;
                if (opened.Relay is { } raw)
                {
                    relayRequest = await RelayPreamble.ReadRequestAsync(raw, token.Token);
                    caller = default;
                }
                else
                {
                    var (peer, key) = await PeerHandshake.AcceptAsync(opened.Input!, opened.Output!, identity, token.Token);
                    if (ssl is not null) TlsLayer.RequireSameKey(ssl, key, peer);
                    caller = peer;
                }
            }
            lease.Established();
            if (opened.Relay is { } relayed)
            {
                // A relayed connection holds its place among the connections for as long as it is spliced.
                if (Relay is { } relay && !throughRelay) await relay.ServeAsync(relayed, relayRequest.Kind, relayRequest.Argument, aborted);
                else await RelayPreamble.WriteAnswerAsync(relayed, throughRelay ? "a relayed connection cannot be relayed again" : "this node does not relay", aborted);
                return;
            }
            Interlocked.Increment(ref _accepted);
            var connection = new ServerConnection(caller, (remote as System.Net.IPEndPoint)?.Address, throughRelay, router, options, time);
            channel = new FrameChannel(opened.Input!, opened.Output!, connection, [FrameKind.Request], options, time, ssl, opened.Direct);
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
