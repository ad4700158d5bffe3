using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;

namespace MoEMesh.Protocol.Tests;

/// <summary>
/// The TLS channel is bound to the PeerId: a man in the middle who ends TLS with its own certificate and
/// relays the real peer's handshake proof is refused, on either side.
/// </summary>
public class TlsBindingTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Dialer_RefusesAListenerWhoseTlsKeyIsNotTheKeyItProved()
    {
        using var relay = PeerIdentity.Create();   // whose certificate the TLS ends with
        using var victim = PeerIdentity.Create();  // whose proof is relayed
        using var client = PeerIdentity.Create();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var serving = Task.Run(async () =>
        {
            using var socket = await listener.AcceptSocketAsync();
            using var limit = new CancellationTokenSource(Bound);
            await using var ssl = await TlsLayer.AuthenticateAsync(new NetworkStream(socket, ownsSocket: false), asServer: true, relay, limit.Token);
            try
            {
                await PeerHandshake.AcceptAsync(PipeReader.Create(ssl), PipeWriter.Create(ssl), victim, limit.Token);
            }
            catch (Exception e) when (e is IOException or HandshakeException or OperationCanceledException)
            {
                // the dialer hangs up
            }
        });

        var options = new PeerProtocolOptions { UseTls = true };
        using var limit = new CancellationTokenSource(Bound);
        var e = await Assert.ThrowsAsync<PeerUnavailableException>(() =>
            PeerConnection.ConnectAsync(new PeerEndpoint(new PeerAddress("127.0.0.1", port), victim.PeerId), client, options, TimeProvider.System, limit.Token));
        Assert.Contains("does not carry the key it proved", e.Message);
        await serving.WaitAsync(Bound);
    }

    [Fact]
    public async Task Listener_RefusesADialerWhoseTlsKeyIsNotTheKeyItProved()
    {
        await using var peer = await LoopbackPeer.StartAsync(useTls: true);
        using var relay = PeerIdentity.Create();
        using var victim = PeerIdentity.Create();
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, peer.Address.Port);
        using var limit = new CancellationTokenSource(Bound);
        await using var ssl = await TlsLayer.AuthenticateAsync(new NetworkStream(socket, ownsSocket: false), asServer: false, relay, limit.Token);
        var input = PipeReader.Create(ssl);
        await PeerHandshake.DialAsync(input, PipeWriter.Create(ssl), victim, peer.ServerIdentity.PeerId, limit.Token);

        // The listener checks the binding after its side of the handshake and closes without serving.
        while (true)
        {
            var read = await input.ReadAsync(limit.Token);
            input.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted) break;
        }
        Assert.Equal(1, peer.Server.ConnectionsRefused);
        Assert.Equal(0, peer.Server.ConnectionsAccepted);
    }
}
