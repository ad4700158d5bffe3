using System.Net;
using System.Net.Sockets;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;

namespace MoEMesh.Protocol.Tests;

/// <summary>A failed handshake says whether the address is an HTTP port or the sides disagree about TLS.</summary>
public class HandshakeDiagnosisTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static async Task<string> DialFailureAsync(PeerAddress address, bool useTls, PeerId? expected = null)
    {
        using var client = PeerIdentity.Create();
        using var limit = new CancellationTokenSource(Bound);
        var options = new PeerProtocolOptions { UseTls = useTls, HandshakeTimeout = Bound };
        var e = await Assert.ThrowsAsync<PeerUnavailableException>(() =>
            PeerConnection.ConnectAsync(new PeerEndpoint(address, expected), client, options, TimeProvider.System, limit.Token));
        return e.Message;
    }

    [Fact]
    public async Task APeerThatRefuses_GetsNoGuessAboutPortsOrTls()
    {
        await using var peer = await LoopbackPeer.StartAsync(useTls: true);
        using var someoneElse = PeerIdentity.Create();
        var message = await DialFailureAsync(peer.Address, useTls: true, someoneElse.PeerId);
        Assert.Contains($"expected peer {someoneElse.PeerId}", message);
        Assert.DoesNotContain("--no-tls", message);
        Assert.DoesNotContain("HTTP", message);
    }

    [Theory]
    [InlineData(false, true, "the peer may use TLS while this side runs --no-tls (both sides must agree)")]
    [InlineData(true, false, "the peer does not complete a TLS handshake: it may run --no-tls while this side uses TLS (both sides must agree)")]
    public async Task ATlsMismatch_IsNamed(bool dialerTls, bool listenerTls, string expected)
    {
        await using var peer = await LoopbackPeer.StartAsync(useTls: listenerTls);
        Assert.EndsWith(expected, await DialFailureAsync(peer.Address, dialerTls));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AnHttpPort_IsNamed(bool useTls)
    {
        using var http = new TcpListener(IPAddress.Loopback, 0);
        http.Start();
        using var stop = new CancellationTokenSource();
        var serving = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    using var socket = await http.AcceptSocketAsync(stop.Token);
                    await socket.ReceiveAsync(new byte[4096], stop.Token);
                    await socket.SendAsync("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray(), stop.Token);
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
        var message = await DialFailureAsync(new PeerAddress("127.0.0.1", ((IPEndPoint)http.LocalEndpoint).Port), useTls);
        Assert.EndsWith("it answers HTTP: that is a node's HTTP port, not its peer port (use the address the node listens on, its --listen)", message);
        await stop.CancelAsync();
        await serving;
    }
}
