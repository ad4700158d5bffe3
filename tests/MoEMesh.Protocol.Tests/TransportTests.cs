using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Google.Protobuf;
using MoEMesh.Protocol.Framing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;
using MoEMesh.Protocol.Wire;
using MoEMesh.Testing;

namespace MoEMesh.Protocol.Tests;

/// <summary>
/// Real sockets on loopback. Waits have finite bounds, generous ones (they only catch a hang, so a busy
/// machine does not fail them); nothing asserts how fast anything ran. Where a test is about a deadline,
/// the clock is a <see cref="ManualTimeProvider"/>, moved by the test once the call is where it wants it.
/// </summary>
public class TransportTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(2);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Call_MultiFramePayload_ComesBackIntact(bool useTls)
    {
        await using var peer = await LoopbackPeer.StartAsync(useTls);
        var payload = new byte[(3 << 20) + 5];
        new Random(1).NextBytes(payload);
        using var response = await peer.CallAsync(peer.Request("echo", payload, header: [1, 2, 3]));
        Assert.True(response.IsOk, response.ToString());
        Assert.Equal(new byte[] { 1, 2, 3 }, response.Header.ToArray());
        Assert.Equal(payload, response.Payload.ToArray());
        Assert.Equal(1, peer.Server.ConnectionsAccepted);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task PipeEntryPoint_ServesTheSameProtocol(bool useTls)
    {
        await using var peer = await LoopbackPeer.StartAsync(useTls, pipes: true);
        var payload = new byte[(2 << 20) + 3];
        new Random(2).NextBytes(payload);
        using var response = await peer.CallAsync(peer.Request("echo", payload));
        Assert.True(response.IsOk, response.ToString());
        Assert.Equal(payload, response.Payload.ToArray());
        using var unknown = await peer.CallAsync(peer.Request("nope"));
        Assert.Equal(StatusCode.NotFound, unknown.Status);
    }

    [Fact]
    public async Task Handshake_ServerLearnsTheCallersPeerId()
    {
        // On a manual clock the handshake's own limits never run out, however long a busy machine takes.
        await using var peer = await LoopbackPeer.StartAsync(useTls: true, time: new ManualTimeProvider());
        using var cancel = new CancellationTokenSource();
        var call = peer.CallAsync(peer.Request("wait", timeout: TimeSpan.FromMinutes(1)), cancel.Token);
        Assert.Equal(peer.ClientIdentity.PeerId, await peer.WaitStarted.Task.WaitAsync(Bound));
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
    }

    [Fact]
    public async Task ConcurrentCalls_ShareOneConnection_AndEachGetsItsOwnAnswer()
    {
        await using var peer = await LoopbackPeer.StartAsync();
        var calls = Enumerable.Range(0, 64).Select(async i =>
        {
            var payload = new byte[1000 + i * 3000];
            new Random(i).NextBytes(payload);
            using var response = await peer.CallAsync(peer.Request("echo", payload));
            return response.IsOk && response.Payload.Span.SequenceEqual(payload);
        }).ToArray();
        Assert.All(await Task.WhenAll(calls).WaitAsync(Bound), Assert.True);
        Assert.Equal(1, peer.Pool.OpenConnections);
        Assert.Equal(1, peer.Server.ConnectionsAccepted);
    }

    [Fact]
    public async Task UnknownMethod_IsNotFound_NamingWhatTheNodeServes()
    {
        await using var peer = await LoopbackPeer.StartAsync();
        using var response = await peer.CallAsync(peer.Request("expert.fly"));
        Assert.Equal(StatusCode.NotFound, response.Status);
        Assert.Contains("'expert.fly'", response.Message);
        Assert.Contains("echo", response.Message);
    }

    [Fact]
    public async Task FailingHandlers_BecomeStatuses_WithoutTheirInternals_AndTheServerKeepsServing()
    {
        await using var peer = await LoopbackPeer.StartAsync();
        using (var broken = await peer.CallAsync(peer.Request("throw")))
        {
            Assert.Equal(StatusCode.Internal, broken.Status);
            Assert.Contains("throw failed on this node", broken.Message);
            Assert.DoesNotContain("handler broke", broken.Message);
            Assert.DoesNotContain(nameof(InvalidOperationException), broken.Message);
        }
        using (var rejected = await peer.CallAsync(peer.Request("reject")))
        {
            Assert.Equal(StatusCode.InvalidArgument, rejected.Status);
            Assert.Contains("reject: the request is not valid", rejected.Message);
            Assert.DoesNotContain("[batch, 4]", rejected.Message);
        }
        using (var refused = await peer.CallAsync(peer.Request("refuse")))
        {
            Assert.Equal(StatusCode.PermissionDenied, refused.Status);
            Assert.Equal("only friends may call this", refused.Message);
        }
        using var fine = await peer.CallAsync(peer.Request("echo", [9]));
        Assert.True(fine.IsOk);
    }

    [Fact]
    public async Task SlowHandler_PastDeadline_GivesDeadlineExceeded_AndStopsTheServerWork()
    {
        var clock = new ManualTimeProvider();
        await using var peer = await LoopbackPeer.StartAsync(time: clock);
        var call = peer.CallAsync(peer.Request("wait", timeout: TimeSpan.FromMilliseconds(300)));
        await peer.WaitStarted.Task.WaitAsync(Bound);
        Assert.False(call.IsCompleted);
        clock.Advance(TimeSpan.FromMilliseconds(300));
        using var response = await call.WaitAsync(Bound);
        Assert.Equal(StatusCode.DeadlineExceeded, response.Status);
        Assert.Contains("no answer within", response.Message);
        await peer.WaitCancelled.Task.WaitAsync(Bound);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(-2)]
    public async Task ClocksSecondsApart_TheServerGivesACallTheTimeItsCallerLeftIt_AndEndsItThen(int skewSeconds)
    {
        var clientClock = new ManualTimeProvider();
        var serverClock = new ManualTimeProvider(clientClock.GetUtcNow() + TimeSpan.FromSeconds(skewSeconds));
        await using var peer = await LoopbackPeer.StartAsync(useTls: true, time: clientClock, serverTime: serverClock);
        var call = peer.CallAsync(peer.Request("wait", timeout: TimeSpan.FromSeconds(1)));

        // A call carries the time it has left, so the server's deadline is one second on its own clock, whatever the time of day there.
        Assert.Equal(serverClock.GetUtcNow() + TimeSpan.FromSeconds(1), await peer.WaitDeadline.Task.WaitAsync(Bound));
        serverClock.Advance(TimeSpan.FromSeconds(1));
        await peer.WaitCancelled.Task.WaitAsync(Bound);
        using var response = await call.WaitAsync(Bound);
        Assert.Equal(StatusCode.DeadlineExceeded, response.Status);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Server_TellsHandlersTheCallersPeerIdAndAddress(bool pipes)
    {
        await using var peer = await LoopbackPeer.StartAsync(useTls: true, pipes: pipes);
        using var response = await peer.CallAsync(peer.Request("whoami"));
        Assert.True(response.IsOk, response.ToString());
        var caller = System.Text.Encoding.UTF8.GetString(response.Header.Span);
        Assert.Equal($"{peer.ClientIdentity.PeerId} {IPAddress.Loopback}", caller.Replace("::ffff:", ""));
    }

    [Fact]
    public async Task PeerStartingMessagesItNeverEnds_IsCutOff_AndOthersAreStillServed()
    {
        await using var peer = await LoopbackPeer.StartAsync();
        await using var raw = await peer.OpenRawAsync();
        // 2,000 unfinished messages each announcing 1 MB: the connection's budget and count stop it.
        var flood = Enumerable.Range(1, 2000).SelectMany(i => RawConnection.FirstFrameOnly((ulong)i, "echo", 1_000_000)).ToArray();
        try
        {
            await raw.SendAsync(flood);
        }
        catch (IOException)
        {
            // the server may close while the flood is still being written
        }
        Assert.True(await raw.ClosedByServerAsync());
        using var fine = await peer.CallAsync(peer.Request("echo", [1]));
        Assert.True(fine.IsOk, fine.ToString());
    }

    [Fact]
    public async Task PeerGoingSilentInsideAMessage_IsCutOffAfterMessageTimeout()
    {
        await using var peer = await LoopbackPeer.StartAsync(configure: o => o.MessageTimeout = TimeSpan.FromMilliseconds(400));
        await using var raw = await peer.OpenRawAsync();
        await raw.SendAsync(RawConnection.FirstFrameOnly(1, "echo", 5000));
        Assert.True(await raw.ClosedByServerAsync());
    }

    [Fact]
    public async Task PeerThatNeverReads_IsCutOffOnceItHasTakenNoBytesForMessageTimeout()
    {
        // Its answers beyond the queue's 4 MiB are refused, so memory stays bounded meanwhile.
        await using var peer = await LoopbackPeer.StartAsync(configure: o =>
        {
            o.MaxMessageBytes = 2 << 20;
            o.MaxQueuedBytesPerConnection = 4 << 20;
            o.MessageTimeout = TimeSpan.FromSeconds(1);
        });
        await using var raw = await peer.OpenRawAsync();
        var payload = new byte[1 << 20];
        try
        {
            // Echoes of 1 MiB each, never read: kernel buffers fill, then the server's queue (answers beyond it are refused).
            for (ulong id = 1; id <= 200; id++)
                await raw.SendAsync(RawConnection.RequestFrames(id, new RequestEnvelope { Method = "echo", DeadlineMicros = 60_000_000 }, payload));
        }
        catch (IOException)
        {
            // closed while we were still writing
        }
        // Not read from here on (reading would let the server's writer move): the server drops the connection.
        await UntilAsync(() => peer.Server.OpenConnections == 0);
        using var fine = await peer.CallAsync(peer.Request("echo", [1]));
        Assert.True(fine.IsOk, fine.ToString());
    }

    private static async Task UntilAsync(Func<bool> condition)
    {
        using var limit = new CancellationTokenSource(Bound);
        while (!condition()) await Task.Delay(10, limit.Token);
    }

    [Fact]
    public async Task DialsBeyondTheHandshakeLimitOfANetwork_AreClosedBeforeTls_AndTheSlotsComeBack()
    {
        await using var peer = await LoopbackPeer.StartAsync(useTls: true, configure: o => o.MaxHandshakesPerNetwork = 2);
        var silent = new[] { await peer.OpenRawAsync(handshake: false), await peer.OpenRawAsync(handshake: false) };
        await UntilAsync(() => peer.Server.HandshakesInProgress == 2);

        await using (var third = await peer.OpenRawAsync(handshake: false))
        {
            Assert.True(await third.ClosedByServerAsync());
            Assert.Equal(1, peer.Server.ConnectionsRefused);
            Assert.Equal(2, peer.Server.HandshakesInProgress); // refused while the two still held their slots
        }

        foreach (var connection in silent) await connection.DisposeAsync();
        await UntilAsync(() => peer.Server.HandshakesInProgress == 0);
        using var fine = await peer.CallAsync(peer.Request("echo", [1]));
        Assert.True(fine.IsOk, fine.ToString());
    }

    [Fact]
    public async Task ConnectionOnWhichNothingArrives_IsClosedAfterIdleTimeout_SoItHoldsNoSlot()
    {
        await using var peer = await LoopbackPeer.StartAsync(configure: o => o.IdleTimeout = TimeSpan.FromMilliseconds(400));
        await using var idle = await peer.OpenRawAsync();
        Assert.True(await idle.ClosedByServerAsync());
        await UntilAsync(() => peer.Server.OpenConnections == 0);
    }

    [Fact]
    public async Task ConnectionsBeyondTheLimitOfANetwork_AreRefused_AndTheOthersKeepWorking()
    {
        await using var peer = await LoopbackPeer.StartAsync(configure: o => o.MaxConnectionsPerNetwork = 2);
        using (var first = await peer.CallAsync(peer.Request("echo", [1]))) Assert.True(first.IsOk);
        await using var second = await peer.OpenRawAsync();
        await UntilAsync(() => peer.Server.OpenConnections == 2 && peer.Server.HandshakesInProgress == 0);

        await using var third = await peer.OpenRawAsync(handshake: false);
        Assert.True(await third.ClosedByServerAsync());
        Assert.Equal(1, peer.Server.ConnectionsRefused);
        using var again = await peer.CallAsync(peer.Request("echo", [2]));
        Assert.True(again.IsOk, again.ToString());
    }

    [Fact]
    public async Task CallToAPeerThatNeverReads_EndsSoonAfterItsDeadline_NotAtKeepAlive()
    {
        await using var silent = await NeverReadingPeer.StartAsync();
        // 32 MiB: more than the socket buffers take, so the writer blocks on it.
        var request = PeerRequest.Create("echo", null, new byte[32 << 20], DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(500));
        using var response = await silent.Transport.CallAsync(silent.Endpoint, request, default).WaitAsync(Bound);
        Assert.Equal(StatusCode.DeadlineExceeded, response.Status);
    }

    [Fact]
    public async Task CallBeyondTheSendQueue_IsRefusedAtOnce_WithoutClosingTheConnection()
    {
        await using var silent = await NeverReadingPeer.StartAsync(o => o.MaxQueuedBytesPerConnection = 64 << 20);
        // Connected first (a small call the peer never answers), so the calls below are queued in order.
        using (await silent.Transport.CallAsync(silent.Endpoint, PeerRequest.Create("echo", null, new byte[8], DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(100)), default)) { }
        // The first 40 MiB call blocks the writer; a second would pass the queue's 64 MiB.
        var first = silent.Transport.CallAsync(silent.Endpoint, PeerRequest.Create("echo", null, new byte[40 << 20], DateTimeOffset.UtcNow + TimeSpan.FromSeconds(20)), default);
        using var second = await silent.Transport.CallAsync(silent.Endpoint, PeerRequest.Create("echo", null, new byte[40 << 20], DateTimeOffset.UtcNow + TimeSpan.FromSeconds(20)), default);
        Assert.Equal(StatusCode.ResourceExhausted, second.Status);
        Assert.Contains("too much already waits to be sent", second.Message);
        Assert.False(first.IsCompleted);
    }

    /// <summary>A listener that completes the handshake and then never reads another byte, and a client for it whose keep-alive could only notice after minutes.</summary>
    private sealed class NeverReadingPeer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly PeerIdentity _server = PeerIdentity.Create();
        private readonly PeerIdentity _client = PeerIdentity.Create();
        private readonly List<Socket> _held = [];
        private PeerConnectionPool _pool = null!;
        private Task _accepting = Task.CompletedTask;

        public TcpPeerTransport Transport { get; private set; } = null!;

        public PeerEndpoint Endpoint => new(new Protocol.Addressing.PeerAddress("127.0.0.1", ((IPEndPoint)_listener.LocalEndpoint).Port), _server.PeerId);

        public static Task<NeverReadingPeer> StartAsync(Action<PeerProtocolOptions>? configure = null)
        {
            var peer = new NeverReadingPeer();
            peer._listener.Start();
            peer._accepting = Task.Run(async () =>
            {
                var socket = await peer._listener.AcceptSocketAsync();
                lock (peer._held) peer._held.Add(socket);
                var stream = new NetworkStream(socket, ownsSocket: false);
                using var limit = new CancellationTokenSource(Bound);
                await PeerHandshake.AcceptAsync(System.IO.Pipelines.PipeReader.Create(stream), System.IO.Pipelines.PipeWriter.Create(stream), peer._server, limit.Token);
            });
            var options = new PeerProtocolOptions { UseTls = false, KeepAliveInterval = TimeSpan.FromMinutes(5), KeepAliveTimeout = TimeSpan.FromMinutes(5) };
            configure?.Invoke(options);
            peer._pool = new PeerConnectionPool(peer._client, options, TimeProvider.System);
            peer.Transport = new TcpPeerTransport(peer._pool, TimeProvider.System);
            return Task.FromResult(peer);
        }

        public async ValueTask DisposeAsync()
        {
            lock (_held) _held.ForEach(s => s.Dispose());
            await _pool.DisposeAsync();
            await _accepting.WaitAsync(Bound);
            _listener.Stop();
            _listener.Dispose();
            _server.Dispose();
            _client.Dispose();
        }
    }

    [Theory]
    [InlineData(long.MaxValue)]
    [InlineData(long.MaxValue / 10)]
    public async Task CallerDeadline_BeyondAnyTimer_IsAnswered(long deadlineMicros)
    {
        await using var peer = await LoopbackPeer.StartAsync();
        await using var raw = await peer.OpenRawAsync();
        await raw.SendAsync(RawConnection.RequestFrames(1, new RequestEnvelope { Method = "echo", DeadlineMicros = deadlineMicros }, [7, 8]));
        var answer = await raw.ReadResponseAsync(1);
        Assert.Equal(StatusCode.Ok, answer.Status);
    }

    [Fact]
    public async Task CallerDeadline_IsCutToTheNodesMaxRequestTime()
    {
        await using var peer = await LoopbackPeer.StartAsync(configure: o => o.MaxRequestTime = TimeSpan.FromMilliseconds(300));
        await using var raw = await peer.OpenRawAsync();
        await raw.SendAsync(RawConnection.RequestFrames(1, new RequestEnvelope { Method = "wait", DeadlineMicros = long.MaxValue }));
        var answer = await raw.ReadResponseAsync(1);
        Assert.Equal(StatusCode.DeadlineExceeded, answer.Status);
        await peer.WaitCancelled.Task.WaitAsync(Bound);
    }

    [Fact]
    public async Task CallerCancels_Throws_AndTheCancelFrameStopsTheServerWork()
    {
        await using var peer = await LoopbackPeer.StartAsync();
        using var cancel = new CancellationTokenSource();
        // A deadline far beyond the bound: only the cancel frame can stop the handler in time.
        var call = peer.CallAsync(peer.Request("wait", timeout: TimeSpan.FromMinutes(5)), cancel.Token);
        await peer.WaitStarted.Task.WaitAsync(Bound);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await peer.WaitCancelled.Task.WaitAsync(Bound);
    }

    [Fact]
    public async Task DeadlineAlreadyPassed_IsNotSent()
    {
        await using var peer = await LoopbackPeer.StartAsync();
        var request = new PeerRequest("echo", default, default, DateTimeOffset.UtcNow - TimeSpan.FromSeconds(1));
        using var response = await peer.CallAsync(request);
        Assert.Equal(StatusCode.DeadlineExceeded, response.Status);
        Assert.Equal(0, peer.Server.ConnectionsAccepted);
    }

    [Fact]
    public async Task OversizedRequest_IsResourceExhausted_AndTheConnectionStaysUsable()
    {
        await using var peer = await LoopbackPeer.StartAsync(configure: o => { o.MaxMessageBytes = 1 << 20; o.MaxBufferedBytesPerConnection = 4 << 20; });
        using (var tooBig = await peer.CallAsync(peer.Request("echo", new byte[2 << 20])))
        {
            Assert.Equal(StatusCode.ResourceExhausted, tooBig.Status);
            Assert.Contains("1048576-byte limit", tooBig.Message);
        }
        using var fine = await peer.CallAsync(peer.Request("echo", new byte[1000]));
        Assert.True(fine.IsOk);
        Assert.Equal(1, peer.Server.ConnectionsAccepted);
    }

    [Fact]
    public async Task WrongExpectedPeerId_IsUnavailable_NamingBoth()
    {
        await using var peer = await LoopbackPeer.StartAsync(useTls: true);
        using var impostor = PeerIdentity.Create();
        using var response = await peer.Client.CallAsync(new PeerEndpoint(peer.Address, impostor.PeerId), peer.Request("echo"), default);
        Assert.Equal(StatusCode.Unavailable, response.Status);
        Assert.Contains(impostor.PeerId.ToString(), response.Message);
        Assert.Contains(peer.ServerIdentity.PeerId.ToString(), response.Message);
    }

    [Fact]
    public async Task WrongProtocolVersion_GetsAClearError_AndOthersAreStillServed()
    {
        await using var peer = await LoopbackPeer.StartAsync();
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, peer.Address.Port);
        var hello = new Handshake { ProtocolVersion = 99, PublicKey = ByteString.CopyFrom(peer.ClientIdentity.PublicKey), Nonce = ByteString.CopyFrom(new byte[32]) }.ToByteArray();
        var frame = new byte[FrameHeader.Size + hello.Length];
        new FrameHeader(FrameKind.Handshake, FrameFlags.None, 0, hello.Length).Write(frame);
        hello.CopyTo(frame, FrameHeader.Size);
        await socket.SendAsync(frame);

        var answer = await ReadFrameAsync(socket);
        var refusal = Handshake.Parser.ParseFrom(answer);
        Assert.Contains("protocol version mismatch", refusal.Error);
        Assert.Contains("version 99", refusal.Error);

        using var fine = await peer.CallAsync(peer.Request("echo", [1]));
        Assert.True(fine.IsOk);
    }

    [Fact]
    public async Task NotAPeer_IsRefused_AndOthersAreStillServed()
    {
        await using var peer = await LoopbackPeer.StartAsync();
        using (var socket = new Socket(SocketType.Stream, ProtocolType.Tcp))
        {
            await socket.ConnectAsync(IPAddress.Loopback, peer.Address.Port);
            await socket.SendAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
            var buffer = new byte[64];
            using var limit = new CancellationTokenSource(Bound);
            Assert.Equal(0, await socket.ReceiveAsync(buffer, limit.Token));
        }
        using var fine = await peer.CallAsync(peer.Request("echo", [1]));
        Assert.True(fine.IsOk);
        Assert.Equal(1, peer.Server.ConnectionsRefused);
    }

    [Fact]
    public async Task TlsOnServer_PlainClient_IsRefusedWithUnavailable()
    {
        await using var tlsPeer = await LoopbackPeer.StartAsync(useTls: true);
        await using var plain = new Transport.PeerConnectionPool(tlsPeer.ClientIdentity,
            new PeerProtocolOptions { UseTls = false, HandshakeTimeout = TimeSpan.FromSeconds(2) }, TimeProvider.System);
        var transport = new Transport.TcpPeerTransport(plain, TimeProvider.System);
        using var response = await transport.CallAsync(tlsPeer.Endpoint, tlsPeer.Request("echo"), default);
        Assert.Equal(StatusCode.Unavailable, response.Status);
        Assert.Contains("Cannot reach peer", response.Message);
    }

    internal static async Task<byte[]> ReadFrameAsync(Socket socket)
    {
        var header = new byte[FrameHeader.Size];
        await ReceiveExactlyAsync(socket, header);
        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(header) + 4 - FrameHeader.Size;
        var body = new byte[length];
        await ReceiveExactlyAsync(socket, body);
        return body;
    }

    private static async Task ReceiveExactlyAsync(Socket socket, byte[] buffer)
    {
        using var limit = new CancellationTokenSource(Bound);
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(read), limit.Token);
            if (n == 0) throw new EndOfStreamException($"connection closed after {read} of {buffer.Length} bytes");
            read += n;
        }
    }
}
