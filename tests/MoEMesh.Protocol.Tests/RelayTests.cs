using System.Net;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Relay;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Protocol.Tests;

/// <summary>
/// A host that listens nowhere (nobody can dial it), reached through a relay it keeps a reservation at:
/// calls keep their answers, deadlines and cancellation; the relay sees only ciphertext and cannot change a
/// call unnoticed; a relay at its limits refuses cleanly; a host notices when its relay goes away.
/// </summary>
public sealed class RelayTests
{
    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public async Task ACallThroughTheRelay_GetsTheSameAnswerAsADirectOne(bool useTls, bool relayServesPipes)
    {
        await using var net = await RelayedNet.StartAsync(useTls, pipes: relayServesPipes);
        var payload = new byte[3 << 20];
        new Random(1).NextBytes(payload);
        using var answer = await net.CallHostAsync("echo", payload, header: [7, 8, 9]);
        Assert.Equal(StatusCode.Ok, answer.Status);
        Assert.Equal(payload, answer.Payload.ToArray());
        Assert.Equal(new byte[] { 7, 8, 9 }, answer.Header.ToArray());
        Assert.Equal(1, net.Relay.CircuitsSpliced);
        Assert.Equal(1, net.Reservation.Accepted);
        // The host saw the caller's own PeerId (the handshake ran end to end), and that the call came through a relay.
        Assert.Equal(net.CallerIdentity.PeerId, net.LastCaller);
        Assert.True(net.LastThroughRelay);
    }

    [Fact]
    public async Task AMalformedRelayRequest_ClosesThatConnectionOnly()
    {
        await using var net = await RelayedNet.StartAsync(useTls: false);
        using (var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp))
        {
            await socket.ConnectAsync(net.RelayEndpoint.Address.Host, net.RelayEndpoint.Address.Port);
            await socket.SendAsync("MMR1"u8.ToArray().Append((byte)9).Concat(new byte[40]).ToArray());
            var buffer = new byte[64];
            using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            Assert.Equal(0, await socket.ReceiveAsync(buffer, limit.Token)); // closed without an answer
        }
        // An Accept for a circuit nobody waits for is refused by name.
        using (var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp))
        {
            await socket.ConnectAsync(net.RelayEndpoint.Address.Host, net.RelayEndpoint.Address.Port);
            await using var stream = new System.Net.Sockets.NetworkStream(socket);
            await RelayPreamble.WriteAcceptAsync(stream, new byte[RelayPreamble.CircuitIdBytes], default);
            Assert.Contains("no caller waits", await RelayPreamble.ReadAnswerAsync(stream, default));
        }
        using var answer = await net.CallHostAsync("echo", [5]);
        Assert.Equal(StatusCode.Ok, answer.Status);
    }

    [Fact]
    public async Task ADeadlineThroughTheRelay_StopsTheHostsWork()
    {
        await using var net = await RelayedNet.StartAsync(useTls: true);
        // The relayed connection first (its setup is not what this measures), then a call that outlives its deadline.
        using (var warm = await net.CallHostAsync("echo", [1])) Assert.Equal(StatusCode.Ok, warm.Status);
        using var answer = await net.CallHostAsync("wait", [], timeout: TimeSpan.FromMilliseconds(500));
        Assert.Equal(StatusCode.DeadlineExceeded, answer.Status);
        // The cancel frame (or the host's own deadline) reached the host's handler through the relay.
        await net.WaitCancelled.Task.WaitAsync(TimeSpan.FromMinutes(1));
    }

    [Fact]
    public async Task TheRelay_SeesOnlyCiphertext()
    {
        await using var net = await RelayedNet.StartAsync(useTls: true);
        var seen = new MemoryStream();
        net.Relay.Tap = (chunk, _) =>
        {
            lock (seen) seen.Write(chunk.Span);
        };
        var marker = System.Text.Encoding.ASCII.GetBytes(new string('q', 16) + "relayed-secret-marker" + new string('z', 16));
        var payload = Enumerable.Repeat(marker, 200).SelectMany(b => b).ToArray();
        using var answer = await net.CallHostAsync("echo", payload);
        Assert.Equal(StatusCode.Ok, answer.Status);
        byte[] relayed;
        lock (seen) relayed = seen.ToArray();
        Assert.True(relayed.Length > payload.Length, $"the relay copied {relayed.Length} bytes for a {payload.Length}-byte echo");
        Assert.Equal(-1, relayed.AsSpan().IndexOf(marker.AsSpan(16, 21)));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ARelayThatChangesABit_IsCaught(bool useTls)
    {
        await using var net = await RelayedNet.StartAsync(useTls);
        using (var warm = await net.CallHostAsync("echo", [1, 2, 3])) Assert.Equal(StatusCode.Ok, warm.Status);
        var payload = new byte[256 << 10];
        new Random(2).NextBytes(payload);
        int flipped = 0;
        net.Relay.Tap = (chunk, towardHost) =>
        {
            if (towardHost && chunk.Length > 1000 && Interlocked.Exchange(ref flipped, 1) == 0) chunk.Span[chunk.Length / 2] ^= 0x40;
        };
        using var answer = await net.CallHostAsync("echo", payload);
        Assert.Equal(1, flipped);
        if (useTls)
        {
            // TLS notices the change: the call fails, and the host never ran on altered bytes.
            Assert.NotEqual(StatusCode.Ok, answer.Status);
            Assert.DoesNotContain(net.Echoed, p => p.Length == payload.Length);
        }
        else
        {
            // Without TLS nothing protects the bytes after the handshake (documented): the change goes through.
            Assert.Equal(StatusCode.Ok, answer.Status);
            Assert.NotEqual(payload, answer.Payload.ToArray());
        }
    }

    [Fact]
    public async Task ARelayAtItsLimits_RefusesCleanly_AndKeepsServing()
    {
        await using var net = await RelayedNet.StartAsync(useTls: false, relay: o =>
        {
            o.MaxReservations = 1;
            o.MaxCircuits = 1;
        });
        // A second peer cannot reserve.
        using var other = PeerIdentity.Create();
        await using var otherPool = new PeerConnectionPool(other, net.Options, TimeProvider.System);
        var refused = await Assert.ThrowsAsync<RelayRefusedException>(() =>
            RelayReservation.ReserveAsync(net.RelayEndpoint, net.HostServer, new TcpPeerTransport(otherPool, TimeProvider.System), net.Options, TimeProvider.System,
                Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, default));
        Assert.Contains("limit of 1 reservations", refused.Message);

        // The first caller holds the only circuit; a second caller (its own connection) is refused, naming the limit.
        using (var first = await net.CallHostAsync("echo", [1])) Assert.Equal(StatusCode.Ok, first.Status);
        await using var second = new PeerConnectionPool(other, net.Options, TimeProvider.System);
        using var answer = await new TcpPeerTransport(second, TimeProvider.System).CallAsync(net.HostEndpoint,
            new PeerRequest("echo", new byte[0], new byte[] { 2 }, DateTimeOffset.UtcNow.AddSeconds(10)), default);
        Assert.Equal(StatusCode.Unavailable, answer.Status);
        Assert.Contains("limit of 1 relayed connections", answer.Message);

        // A peer with no reservation there is refused by name.
        var nobody = PeerIdentity.Create();
        using var unknown = await new TcpPeerTransport(second, TimeProvider.System).CallAsync(new PeerEndpoint(net.RelayEndpoint.Address.ThroughRelay, nobody.PeerId),
            new PeerRequest("echo", new byte[0], new byte[] { 3 }, DateTimeOffset.UtcNow.AddSeconds(10)), default);
        Assert.Equal(StatusCode.Unavailable, unknown.Status);
        Assert.Contains("holds no reservation", unknown.Message);

        // The first caller is still served.
        using (var again = await net.CallHostAsync("echo", [4])) Assert.Equal(StatusCode.Ok, again.Status);
    }

    [Fact]
    public async Task AHost_NoticesWhenItsRelayGoesAway()
    {
        await using var net = await RelayedNet.StartAsync(useTls: false);
        await net.StopRelayAsync();
        var reason = await net.Reservation.Lost.WaitAsync(TimeSpan.FromMinutes(1));
        Assert.False(string.IsNullOrEmpty(reason));
    }

    [Fact]
    public async Task AHost_CountsARelayThatGoesSilentAsLost_AfterOneListenCallTimesOut()
    {
        // A "relay" that keeps places (for 2 s, so a listen call waits 1 s plus the handshake timeout) and then never answers a listen call.
        var options = new PeerProtocolOptions { UseTls = false, HandshakeTimeout = TimeSpan.FromSeconds(3) };
        using var relayIdentity = PeerIdentity.Create();
        int listens = 0;
        var router = new PeerRouter(TimeProvider.System)
            .Map(RelayService.ReserveMethod, (_, _) => ValueTask.FromResult(PeerResponse.Ok(new RelayReserveResponse { KeepMillis = 2000 })))
            .Map(RelayService.ListenMethod, async (_, token) =>
            {
                Interlocked.Increment(ref listens);
                await Task.Delay(Timeout.InfiniteTimeSpan, token);
                return PeerResponse.Ok();
            });
        await using var silent = PeerListener.Start(new PeerServer(relayIdentity, router, options, TimeProvider.System), new IPEndPoint(IPAddress.Loopback, 0));
        using var hostIdentity = PeerIdentity.Create();
        await using var pool = new PeerConnectionPool(hostIdentity, options, TimeProvider.System);
        await using var reservation = await RelayReservation.ReserveAsync(new PeerEndpoint(silent.Address, relayIdentity.PeerId), new PeerServer(hostIdentity, new PeerRouter(TimeProvider.System), options, TimeProvider.System),
            new TcpPeerTransport(pool, TimeProvider.System), options, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, default);

        var reason = await reservation.Lost.WaitAsync(TimeSpan.FromMinutes(1));
        Assert.Contains("no answer within", reason);
        Assert.Equal(1, listens);
    }

    [Fact]
    public void RelayedAddresses_ReadAndWriteWithTheirSuffix()
    {
        var parsed = PeerEndpoint.Parse(PeerIdentity.FromSeed(3).PeerId + "@10.0.0.1:7700/relay");
        Assert.True(parsed.Address.Relayed);
        Assert.Equal("10.0.0.1:7700/relay", parsed.Address.ToString());
        Assert.Equal(new PeerAddress("10.0.0.1", 7700), parsed.Address.Direct);
        Assert.False(PeerAddress.TryParseListen("0.0.0.0:7700/relay", out _));
    }

    /// <summary>A relay listening on loopback; a host that listens nowhere and reserves there; a caller.</summary>
    private sealed class RelayedNet : IAsyncDisposable
    {
        private IAsyncDisposable? _relayListener;
        private readonly PeerConnectionPool _hostPool, _callerPool;

        private RelayedNet(PeerProtocolOptions options, RelayService relay, IAsyncDisposable relayListener, PeerAddress relayAddress, PeerIdentity relayIdentity, PeerServer hostServer, PeerIdentity hostIdentity,
            PeerConnectionPool hostPool, PeerIdentity callerIdentity, PeerConnectionPool callerPool)
        {
            Options = options;
            Relay = relay;
            _relayListener = relayListener;
            RelayEndpoint = new PeerEndpoint(relayAddress, relayIdentity.PeerId);
            HostServer = hostServer;
            HostIdentity = hostIdentity;
            _hostPool = hostPool;
            CallerIdentity = callerIdentity;
            _callerPool = callerPool;
        }

        public PeerProtocolOptions Options { get; }

        public RelayService Relay { get; }

        public PeerEndpoint RelayEndpoint { get; }

        public PeerServer HostServer { get; }

        public PeerIdentity HostIdentity { get; }

        public PeerIdentity CallerIdentity { get; }

        public RelayReservation Reservation { get; private set; } = null!;

        public PeerEndpoint HostEndpoint => new(Reservation.Address, HostIdentity.PeerId);

        public PeerId? LastCaller { get; private set; }

        public bool LastThroughRelay { get; private set; }

        public List<byte[]> Echoed { get; } = [];

        public TaskCompletionSource WaitCancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <param name="pipes">Serve the relay through <see cref="PeerServer.HandlePipeAsync"/> (a host's pipes, as Kestrel's) instead of the socket listener.</param>
        public static async Task<RelayedNet> StartAsync(bool useTls, Action<RelayOptions>? relay = null, bool pipes = false)
        {
            var time = TimeProvider.System;
            var options = new PeerProtocolOptions { UseTls = useTls };
            var relayOptions = new RelayOptions();
            relay?.Invoke(relayOptions);
            var relayIdentity = PeerIdentity.Create();
            var relayRouter = new PeerRouter(time);
            var service = new RelayService(relayOptions, options, time);
            service.Map(relayRouter);
            var relayServer = new PeerServer(relayIdentity, relayRouter, options, time) { Relay = service };
            IAsyncDisposable listener;
            PeerAddress relayAddress;
            if (pipes)
            {
                var piped = PipeListener.Start(relayServer, new IPEndPoint(IPAddress.Loopback, 0));
                (listener, relayAddress) = (piped, piped.Address);
            }
            else
            {
                var plain = PeerListener.Start(relayServer, new IPEndPoint(IPAddress.Loopback, 0));
                (listener, relayAddress) = (plain, plain.Address);
            }

            var hostIdentity = PeerIdentity.Create();
            var hostRouter = new PeerRouter(time);
            var hostPool = new PeerConnectionPool(hostIdentity, options, time);
            var callerIdentity = PeerIdentity.Create();
            var net = new RelayedNet(options, service, listener, relayAddress, relayIdentity, new PeerServer(hostIdentity, hostRouter, options, time), hostIdentity, hostPool, callerIdentity,
                new PeerConnectionPool(callerIdentity, options, time));
            hostRouter.Map("echo", (request, _) =>
            {
                net.LastCaller = request.Caller;
                net.LastThroughRelay = request.ThroughRelay;
                lock (net.Echoed) net.Echoed.Add(request.Payload.ToArray());
                var payload = request.TakePayload();
                return ValueTask.FromResult(new PeerResponse(StatusCode.Ok, "", request.Header.ToArray(), payload.Memory, payload));
            });
            hostRouter.Map("wait", async (_, token) =>
            {
                try
                {
                    await Task.Delay(Timeout.InfiniteTimeSpan, token);
                }
                finally
                {
                    net.WaitCancelled.TrySetResult();
                }
                return PeerResponse.Ok();
            });
            net.Reservation = await RelayReservation.ReserveAsync(net.RelayEndpoint, net.HostServer, new TcpPeerTransport(hostPool, time), options, time,
                Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, default);
            return net;
        }

        public Task<PeerResponse> CallHostAsync(string method, byte[] payload, TimeSpan? timeout = null, byte[]? header = null) =>
            new TcpPeerTransport(_callerPool, TimeProvider.System).CallAsync(HostEndpoint,
                new PeerRequest(method, header ?? [], payload, DateTimeOffset.UtcNow + (timeout ?? TimeSpan.FromSeconds(30))), default);

        public async Task StopRelayAsync()
        {
            if (_relayListener is { } listener) await listener.DisposeAsync();
            _relayListener = null;
        }

        public async ValueTask DisposeAsync()
        {
            await _callerPool.DisposeAsync();
            await Reservation.DisposeAsync();
            await _hostPool.DisposeAsync();
            await StopRelayAsync();
            Relay.Dispose();
        }
    }
}
