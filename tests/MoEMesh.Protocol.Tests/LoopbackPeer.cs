using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;
using MoEMesh.Protocol.Wire;
using MoEMesh.Testing;

namespace MoEMesh.Protocol.Tests;

/// <summary>
/// A real peer server on a loopback port with test methods, and a client transport with its own
/// identity. Methods: "echo" returns header and payload; "wait" runs until its token fires and records
/// that; "throw" and "reject" fail with exceptions whose text must stay on the node, "refuse" with a
/// status and message meant for the caller; "whoami" answers the caller's PeerId and address as the server saw them.
/// </summary>
public sealed class LoopbackPeer : IAsyncDisposable
{
    private LoopbackPeer(IAsyncDisposable listener, PeerAddress address, PeerServer server, PeerIdentity serverIdentity, PeerIdentity clientIdentity, PeerConnectionPool pool, PeerProtocolOptions options,
        TimeProvider time)
    {
        Time = time;
        _listener = listener;
        Address = address;
        Server = server;
        ServerIdentity = serverIdentity;
        ClientIdentity = clientIdentity;
        Pool = pool;
        Options = options;
        Client = new TcpPeerTransport(pool, time);
    }

    private readonly IAsyncDisposable _listener;

    /// <summary>Where the server listens.</summary>
    public PeerAddress Address { get; }

    public PeerServer Server { get; }

    public PeerIdentity ServerIdentity { get; }

    public PeerIdentity ClientIdentity { get; }

    public PeerConnectionPool Pool { get; }

    public PeerProtocolOptions Options { get; }

    public TcpPeerTransport Client { get; }

    public PeerEndpoint Endpoint => new(Address, ServerIdentity.PeerId);

    /// <summary>The clock of server and client (deadlines, handshake and idle limits).</summary>
    public TimeProvider Time { get; }

    /// <summary>Completes with the caller's PeerId when a "wait" handler starts.</summary>
    public TaskCompletionSource<PeerId> WaitStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes with the deadline a "wait" handler was given, on the server's clock.</summary>
    public TaskCompletionSource<DateTimeOffset> WaitDeadline { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when a "wait" handler's token fires.</summary>
    public TaskCompletionSource WaitCancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <param name="useTls">TLS on.</param>
    /// <param name="configure">Changes to the protocol options.</param>
    /// <param name="pipes">Serve through <see cref="PeerServer.HandlePipeAsync"/> (as a host handing over pipes does) instead of the socket listener.</param>
    /// <param name="time">The clock of server and client; the system's when null (a <see cref="ManualTimeProvider"/> makes deadlines independent of the machine's speed).</param>
    /// <param name="serverTime">The server's own clock, when it is not the client's (clocks apart).</param>
    public static async Task<LoopbackPeer> StartAsync(bool useTls = false, Action<PeerProtocolOptions>? configure = null, bool pipes = false, TimeProvider? time = null,
        TimeProvider? serverTime = null)
    {
        time ??= TimeProvider.System;
        serverTime ??= time;
        var options = new PeerProtocolOptions { UseTls = useTls };
        configure?.Invoke(options);
        var serverIdentity = PeerIdentity.Create();
        var router = new PeerRouter(serverTime);
        LoopbackPeer? peer = null;
        router.Map("echo", (request, _) =>
        {
            var payload = request.TakePayload();
            return ValueTask.FromResult(new PeerResponse(StatusCode.Ok, "", request.Header.ToArray(), payload.Memory, payload));
        });
        router.Map("wait", async (request, token) =>
        {
            peer!.WaitDeadline.TrySetResult(request.Deadline);
            peer.WaitStarted.TrySetResult(request.Caller);
            try
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, token);
            }
            finally
            {
                peer.WaitCancelled.TrySetResult();
            }
            return PeerResponse.Ok();
        });
        router.Map("throw", (_, _) => throw new InvalidOperationException("handler broke"));
        router.Map("reject", (_, _) => throw new ArgumentException("shape [2, 3] does not fit [batch, 4]"));
        router.Map("refuse", (_, _) => throw new PeerRpcException(StatusCode.PermissionDenied, "only friends may call this"));
        router.Map("whoami", (request, _) => ValueTask.FromResult(new PeerResponse(StatusCode.Ok, "", System.Text.Encoding.UTF8.GetBytes($"{request.Caller} {request.RemoteAddress}"), default, null)));
        var server = new PeerServer(serverIdentity, router, options, serverTime);
        var loopback = new IPEndPoint(IPAddress.Loopback, 0);
        IAsyncDisposable listener;
        PeerAddress address;
        if (pipes)
        {
            var piped = PipeListener.Start(server, loopback);
            (listener, address) = (piped, piped.Address);
        }
        else
        {
            var plain = PeerListener.Start(server, loopback);
            (listener, address) = (plain, plain.Address);
        }
        var clientIdentity = PeerIdentity.Create();
        peer = new LoopbackPeer(listener, address, server, serverIdentity, clientIdentity, new PeerConnectionPool(clientIdentity, options, time), options, time);
        return peer;
    }

    /// <summary>A hand-driven connection to this server as the client identity (see <see cref="RawConnection"/>).</summary>
    public Task<RawConnection> OpenRawAsync(bool handshake = true) => RawConnection.OpenAsync(Address, ClientIdentity, Options.UseTls, handshake);

    public PeerRequest Request(string method, byte[]? payload = null, TimeSpan? timeout = null, byte[]? header = null) =>
        new(method, header ?? [], payload ?? [], Time.GetUtcNow() + (timeout ?? TimeSpan.FromSeconds(10)));

    public Task<PeerResponse> CallAsync(PeerRequest request, CancellationToken cancellationToken = default) =>
        Client.CallAsync(Endpoint, request, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await Pool.DisposeAsync();
        await _listener.DisposeAsync();
        ServerIdentity.Dispose();
        ClientIdentity.Dispose();
    }
}

/// <summary>Accepts sockets and serves each as a pair of pipes through <see cref="PeerServer.HandlePipeAsync"/>.</summary>
internal sealed class PipeListener : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _connections = [];
    private readonly Task _accepting;

    private PipeListener(Socket socket, PeerServer server)
    {
        _socket = socket;
        Address = PeerAddress.From((IPEndPoint)socket.LocalEndPoint!);
        _accepting = Task.Run(async () =>
        {
            while (true)
            {
                Socket accepted;
                try
                {
                    accepted = await _socket.AcceptAsync(_stopping.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
                {
                    return;
                }
                lock (_connections) _connections.Add(ServeAsync(server, accepted));
            }
        });
    }

    public PeerAddress Address { get; }

    public static PipeListener Start(PeerServer server, IPEndPoint endPoint)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(endPoint);
        socket.Listen(64);
        return new PipeListener(socket, server);
    }

    private async Task ServeAsync(PeerServer server, Socket socket)
    {
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        var pipe = new Pipe(PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true)), PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true)));
        await server.HandlePipeAsync(pipe, socket.RemoteEndPoint, _stopping.Token);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _socket.Dispose();
        await _accepting;
        Task[] open;
        lock (_connections) open = [.. _connections];
        await Task.WhenAll(open);
        _stopping.Dispose();
    }

    private sealed record Pipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;
}
