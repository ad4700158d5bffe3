using System.Net;
using MoEMesh.Node.Hosting;
using MoEMesh.Protocol;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Node.Tests;

public class KestrelPeerListenerTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task KestrelEndpoint_ServesThePeerProtocol(bool useTls)
    {
        // A loaded machine (the whole suite running beside this) may take seconds to accept and to finish a TLS handshake: this test is about serving, not speed.
        var options = new PeerProtocolOptions { UseTls = useTls, ConnectTimeout = TimeSpan.FromSeconds(30), HandshakeTimeout = TimeSpan.FromSeconds(30) };
        using var serverIdentity = PeerIdentity.Create();
        var router = new PeerRouter(TimeProvider.System);
        router.Map("echo", (request, _) => ValueTask.FromResult(new PeerResponse(StatusCode.Ok, "", default, request.Payload.ToArray())));
        var server = new PeerServer(serverIdentity, router, options, TimeProvider.System);
        await using var listener = await KestrelPeerListener.StartAsync(server, new IPEndPoint(IPAddress.Loopback, 0), default);
        using var clientIdentity = PeerIdentity.Create();
        await using var pool = new PeerConnectionPool(clientIdentity, options, TimeProvider.System);
        var transport = new TcpPeerTransport(pool, TimeProvider.System);

        var payload = new byte[(2 << 20) + 3];
        new Random(2).NextBytes(payload);
        using var response = await transport.CallAsync(new PeerEndpoint(listener.Address, serverIdentity.PeerId),
            PeerRequest.Create("echo", null, payload, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(30)), default);
        Assert.True(response.IsOk, response.ToString());
        Assert.Equal(payload, response.Payload.ToArray());
        Assert.Equal(1, server.ConnectionsAccepted);
    }

    [Fact]
    public async Task KestrelEndpoint_TellsAPeerThatBreaksTheFramingWhy_BeforeClosing()
    {
        var options = new PeerProtocolOptions { UseTls = false };
        using var serverIdentity = PeerIdentity.Create();
        var server = new PeerServer(serverIdentity, new PeerRouter(TimeProvider.System), options, TimeProvider.System);
        await using var listener = await KestrelPeerListener.StartAsync(server, new IPEndPoint(IPAddress.Loopback, 0), default);
        var oversizedPing = new byte[Protocol.Framing.FrameHeader.Size + 100];
        new Protocol.Framing.FrameHeader(Protocol.Framing.FrameKind.Ping, Protocol.Framing.FrameFlags.None, 1, 100).Write(oversizedPing);
        for (int i = 0; i < 10; i++)
        {
            using var identity = PeerIdentity.Create();
            await using var raw = await Testing.RawConnection.OpenAsync(listener.Address, identity, useTls: false);
            await raw.SendAsync(oversizedPing);
            Assert.Contains("ping body of 100 bytes exceeds 64", await raw.ReadGoAwayAsync() ?? "(closed with no GoAway)");
        }
    }
}
