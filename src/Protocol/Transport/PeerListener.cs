using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Protocol.Addressing;

namespace MoEMesh.Protocol.Transport;

/// <summary>
/// The default way to serve the peer protocol: a listening socket whose accepted connections are handed
/// to a <see cref="PeerServer"/> with 256 KiB pipes. Every connection runs as a tracked task; disposing
/// stops accepting, closes each connection with a GoAway and waits for them to end.
/// </summary>
public sealed partial class PeerListener : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly PeerServer _server;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly TrackedTasks _connections = new();
    private readonly Task _accepting;
    private int _disposed;

    private PeerListener(Socket socket, PeerServer server, ILogger logger)
    {
        _socket = socket;
        _server = server;
        _logger = logger;
        Address = PeerAddress.From((IPEndPoint)socket.LocalEndPoint!);
        _accepting = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The address actually bound (port 0 resolved).</summary>
    public PeerAddress Address { get; }

    /// <summary>Binds <paramref name="endPoint"/> (port 0 for any free port) and starts accepting.</summary>
    /// <exception cref="SocketException">The address cannot be bound (in use, not local); the message says which.</exception>
    public static PeerListener Start(PeerServer server, IPEndPoint endPoint, ILogger<PeerListener>? logger = null)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(endPoint);
            socket.Listen(512);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new PeerListener(socket, server, logger ?? (ILogger)NullLogger.Instance);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        await _stopping.CancelAsync();
        _socket.Dispose();
        await _accepting;
        await _connections.WhenAllAsync();
        _stopping.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket accepted;
            try
            {
                accepted = await _socket.AcceptAsync(_stopping.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException || _stopping.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException e)
            {
                LogAcceptFailed(_logger, e.SocketErrorCode.ToString());
                continue;
            }
            accepted.NoDelay = true;
            _connections.Add(ServeAsync(accepted));
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        await Task.Yield();
        var remote = socket.RemoteEndPoint;
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        await _server.HandleStreamAsync(stream, remote, _stopping.Token);
    }

    [LoggerMessage(EventId = 210, Level = LogLevel.Warning, Message = "Accepting a peer connection failed: {Error}")]
    private static partial void LogAcceptFailed(ILogger logger, string error);
}
