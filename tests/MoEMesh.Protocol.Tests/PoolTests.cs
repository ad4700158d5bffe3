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
    /// <summary>Catches a hang; generous, so a busy machine does not fail a test.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(2);

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
        var start = time.GetUtcNow();
        // Keep-alive later than idle close, so only the idle rule can close the connection.
        var options = new PeerProtocolOptions { UseTls = false, KeepAliveInterval = TimeSpan.FromSeconds(60), IdleTimeout = TimeSpan.FromSeconds(30) };
        await using var pool = new PeerConnectionPool(peer.ClientIdentity, options, time);
        using var limit = new CancellationTokenSource(Bound);
        var connection = await pool.GetAsync(peer.Endpoint, limit.Token);
        Assert.Equal(1, pool.OpenConnections);

        // The maintenance loop wakes every 15 s; step the clock one wake-up at a time until it closes the
        // connection. Two timers are armed between wake-ups: the connection's stall watch (periodic) and the
        // loop's wait (one-shot, re-armed by the loop after each wake-up). Each step waits for both, so no
        // wake-up is skipped however slowly the loop runs.
        const int armed = 2;
        await time.WaitForTimersAsync(armed, limit.Token);
        for (int step = 0; pool.OpenConnections != 0; step++)
        {
            Assert.True(step < 8, "the idle connection was still open after 8 maintenance periods");
            time.Advance(TimeSpan.FromSeconds(15));
            await WaitUntilAsync(() => pool.OpenConnections == 0 || time.ActiveTimers >= armed, limit.Token);
        }
        Assert.InRange(time.GetUtcNow() - start, options.IdleTimeout, options.IdleTimeout + TimeSpan.FromSeconds(15));
        Assert.False(connection.IsOpen);
        var again = await pool.GetAsync(peer.Endpoint, limit.Token);
        Assert.True(again.IsOpen);
        Assert.NotSame(connection, again);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        while (!condition()) await Task.Delay(1, cancellationToken);
    }

    [Fact]
    public void BadOptions_StopThePoolBeingMade_NamingEverySetting()
    {
        using var identity = PeerIdentity.FromSeed(77);
        var e = Assert.Throws<ArgumentException>(() => new PeerConnectionPool(identity,
            new PeerProtocolOptions { MaxConnections = 0, MaxMessageBytes = 1 << 20, MaxQueuedBytesPerConnection = 1 << 10, KeepAliveTimeout = TimeSpan.FromDays(2) }, TimeProvider.System));
        Assert.Equal(
        [
            "PeerProtocolOptions:MaxConnections: must be at least 1; got 0.",
            "PeerProtocolOptions:KeepAliveTimeout: must be positive and at most a day (1.00:00:00); got 2.00:00:00.",
        ], e.Message.Split(Environment.NewLine));
        var related = Assert.Throws<ArgumentException>(() => new PeerConnectionPool(identity, new PeerProtocolOptions { MaxMessageBytes = 1 << 20, MaxQueuedBytesPerConnection = 1 << 10 }, TimeProvider.System));
        Assert.Equal("PeerProtocolOptions:MaxQueuedBytesPerConnection: must hold at least one message (MaxMessageBytes, 1048576); got 1024.", related.Message);
    }
}
