using System.Net;
using System.Net.Sockets;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;
using MoEMesh.Testing;

namespace MoEMesh.Protocol.Tests;

public class PoolTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    /// <summary>A loopback port with nothing listening: connects are refused at once.</summary>
    private static PeerAddress ClosedPort()
    {
        using var probe = new Socket(SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return PeerAddress.From((IPEndPoint)probe.LocalEndPoint!);
    }

    [Fact]
    public async Task FailedConnect_BacksOff_DoublingUntilTheNextAttemptIsDue()
    {
        var time = new ManualTimeProvider();
        using var identity = PeerIdentity.Create();
        await using var pool = new PeerConnectionPool(identity, new PeerProtocolOptions { UseTls = false }, time);
        var endpoint = new PeerEndpoint(ClosedPort());

        var first = await Assert.ThrowsAsync<PeerUnavailableException>(() => pool.GetAsync(endpoint, default));
        Assert.Contains("Cannot reach peer", first.Message);
        var backedOff = await Assert.ThrowsAsync<PeerUnavailableException>(() => pool.GetAsync(endpoint, default));
        Assert.Contains("backed off for 1.0 s more after 1 failed attempts", backedOff.Message);

        time.Advance(TimeSpan.FromSeconds(1));
        var second = await Assert.ThrowsAsync<PeerUnavailableException>(() => pool.GetAsync(endpoint, default));
        Assert.Contains("Cannot reach peer", second.Message);
        time.Advance(TimeSpan.FromSeconds(1));
        var doubled = await Assert.ThrowsAsync<PeerUnavailableException>(() => pool.GetAsync(endpoint, default));
        Assert.Contains("backed off for 1.0 s more after 2 failed attempts", doubled.Message);
    }

    [Fact]
    public async Task BackedOffPeer_ThroughTransport_IsUnavailable()
    {
        var time = new ManualTimeProvider();
        using var identity = PeerIdentity.Create();
        await using var pool = new PeerConnectionPool(identity, new PeerProtocolOptions { UseTls = false }, time);
        var transport = new TcpPeerTransport(pool, time);
        var request = new PeerRequest("echo", default, default, time.GetUtcNow() + TimeSpan.FromSeconds(2));
        using var response = await transport.CallAsync(new PeerEndpoint(ClosedPort()), request, default);
        Assert.Equal(Wire.StatusCode.Unavailable, response.Status);
    }

    [Fact]
    public async Task IdleConnection_IsClosedByMaintenance_AndReopenedOnDemand()
    {
        await using var peer = await LoopbackPeer.StartAsync();
        var time = new ManualTimeProvider();
        var options = new PeerProtocolOptions { UseTls = false, KeepAliveInterval = TimeSpan.FromSeconds(15), IdleTimeout = TimeSpan.FromSeconds(30) };
        await using var pool = new PeerConnectionPool(peer.ClientIdentity, options, time);
        using var limit = new CancellationTokenSource(Bound);
        var connection = await pool.GetAsync(peer.Endpoint, limit.Token);
        Assert.Equal(1, pool.OpenConnections);

        // The maintenance loop wakes every 7.5 s; at 30 s idle it closes the connection.
        for (int step = 0; step < 4; step++)
        {
            await time.WaitForTimersAsync(1, limit.Token);
            time.Advance(TimeSpan.FromSeconds(7.5));
        }
        while (pool.OpenConnections != 0)
        {
            await time.WaitForTimersAsync(1, limit.Token);
            await Task.Yield();
        }
        Assert.False(connection.IsOpen);
        var again = await pool.GetAsync(peer.Endpoint, limit.Token);
        Assert.True(again.IsOpen);
        Assert.NotSame(connection, again);
    }
}
