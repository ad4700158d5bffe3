using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net.Sockets;
using Google.Protobuf;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Framing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Protocol.Transport;

/// <summary>
/// The dialer's side of one connection: many calls in flight, answers matched by request id. A call
/// that reaches its deadline returns DeadlineExceeded and sends a cancel frame so the server stops
/// working on it; the caller's own cancellation does the same and then throws.
/// </summary>
public sealed class PeerConnection : IFrameSink, IAsyncDisposable
{
    private readonly ConcurrentDictionary<ulong, TaskCompletionSource<PeerResponse>> _pending = new();
    private readonly TimeProvider _time;
    private FrameChannel _channel = null!;
    private long _nextRequestId;
    private long _lastActivity;
    private TaskCompletionSource? _pong;

    private PeerConnection(PeerEndpoint endpoint, PeerId remote, TimeProvider time)
    {
        Endpoint = endpoint;
        RemotePeer = remote;
        _time = time;
        _lastActivity = time.GetTimestamp();
    }

    /// <summary>Where this connection goes.</summary>
    public PeerEndpoint Endpoint { get; }

    /// <summary>The authenticated peer.</summary>
    public PeerId RemotePeer { get; }

    /// <summary>Whether calls can still be sent.</summary>
    public bool IsOpen => _channel.CloseReason is null;

    /// <summary>Why the connection closed, or null while open.</summary>
    public string? CloseReason => _channel.CloseReason;

    /// <summary>Calls waiting for an answer.</summary>
    public int InFlight => _pending.Count;

    /// <summary>Time since the last call was sent or answered.</summary>
    public TimeSpan IdleFor => _time.GetElapsedTime(Interlocked.Read(ref _lastActivity));

    /// <summary>
    /// Connects (through the relay, for a relayed address), runs TLS (when on) and the handshake, and starts the
    /// connection's loops. Through a relay, TLS and the handshake run end to end with the peer: the relay
    /// passes bytes it can neither read nor change unnoticed.
    /// </summary>
    /// <exception cref="PeerUnavailableException">Connect, relay, TLS or handshake failed; the message names the endpoint and the reason.</exception>
    public static async Task<PeerConnection> ConnectAsync(PeerEndpoint endpoint, PeerIdentity identity, PeerProtocolOptions options, TimeProvider time, CancellationToken cancellationToken)
    {
        if (endpoint.Address.Relayed && endpoint.PeerId is null)
            throw new PeerUnavailableException($"Cannot reach peer {endpoint}: a relayed address needs the PeerId of the peer behind the relay (PEERID@{endpoint.Address}).");
        Stream stream;
        try
        {
            stream = await DialAsync(endpoint.Address, options, time, cancellationToken);
        }
        catch (SocketException e)
        {
            throw new PeerUnavailableException($"Cannot reach peer {endpoint}: {e.Message.TrimEnd('.')}", e);
        }
        return await ConnectOverAsync(stream, endpoint, identity, options, time, cancellationToken, diagnose: true);
    }

    /// <summary>
    /// Runs the relay preamble (for a relayed address), TLS (when on) and the handshake over a connected
    /// <paramref name="stream"/>, which the connection then owns (it is disposed on failure too). With
    /// <paramref name="diagnose"/>, a failed handshake is followed by a probe that says why (an HTTP port, a
    /// TLS mismatch); dial-backs for other peers leave it out, so they cannot be used to probe an address.
    /// </summary>
    /// <exception cref="PeerUnavailableException">Relay, TLS or handshake failed; the message names the endpoint and the reason.</exception>
    public static async Task<PeerConnection> ConnectOverAsync(Stream stream, PeerEndpoint endpoint, PeerIdentity identity, PeerProtocolOptions options, TimeProvider time,
        CancellationToken cancellationToken, bool diagnose = false)
    {
        try
        {
            // Through a relay the handshake waits first for the relay to reach the peer (itself within HandshakeTimeout).
            using var handshakeLimit = new CancellationTokenSource(endpoint.Address.Relayed ? 2 * options.HandshakeTimeout : options.HandshakeTimeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, handshakeLimit.Token);
            if (endpoint.Address.Relayed)
            {
                if (endpoint.PeerId is not { } target) throw new RelayRefusedException("a relayed address needs the PeerId of the peer behind the relay");
                await Relay.RelayPreamble.WriteConnectAsync(stream, target, linked.Token);
                if (await Relay.RelayPreamble.ReadAnswerAsync(stream, linked.Token) is { } refusal)
                    throw new RelayRefusedException($"the relay refused: {refusal}");
            }
            var ssl = options.UseTls ? await TlsLayer.AuthenticateAsync(stream, asServer: false, identity, linked.Token) : null;
            stream = ssl ?? stream;
            var input = StreamPipes.Reader(stream);
            var output = StreamPipes.Writer(stream);
            var (peer, key) = await PeerHandshake.DialAsync(input, output, identity, endpoint.PeerId, linked.Token);
            if (ssl is not null) TlsLayer.RequireSameKey(ssl, key, peer);
            var connection = new PeerConnection(endpoint, peer, time);
            connection._channel = new FrameChannel(input, output, connection, [FrameKind.Response], options, time, stream, directStream: stream);
            connection._channel.Start();
            return connection;
        }
        catch (Exception e) when (e is SocketException or IOException or HandshakeException or RelayRefusedException or System.Security.Authentication.AuthenticationException
                                       || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            await stream.DisposeAsync();
            string why = e is OperationCanceledException ? "timed out" : e.Message.TrimEnd('.');
            // Once connected, a failed handshake is mostly a wrong port or a TLS mismatch: say which.
            if (diagnose && !endpoint.Address.Relayed && await HandshakeDiagnosis.HintAsync(endpoint.Address, options.UseTls, e, time, cancellationToken) is { } hint)
                why = $"{why}; {hint}";
            throw new PeerUnavailableException($"Cannot reach peer {endpoint}: {why}", e);
        }
        catch
        {
            await stream.DisposeAsync();
            throw;
        }
    }

    /// <summary>A TCP connection to <paramref name="address"/> (the relay's, for a relayed one) within <see cref="PeerProtocolOptions.ConnectTimeout"/>.</summary>
    /// <exception cref="SocketException">It could not be made; the message says why.</exception>
    public static async Task<Stream> DialAsync(PeerAddress address, PeerProtocolOptions options, TimeProvider time, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var connectTimer = new CancellationTokenSource(options.ConnectTimeout, time);
            using var connectLimit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, connectTimer.Token);
            await ConnectSocketAsync(socket, address, options, connectLimit.Token, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sends a call and waits for its answer until the request's deadline. Timeouts and a lost connection
    /// are statuses; the caller's cancellation sends a cancel frame and throws.
    /// </summary>
    public async Task<PeerResponse> CallAsync(PeerRequest request, CancellationToken cancellationToken)
    {
        var remaining = request.Deadline - _time.GetUtcNow();
        if (remaining <= TimeSpan.Zero)
            return PeerResponse.Error(StatusCode.DeadlineExceeded, $"{request.Method} to {RemotePeer}: the deadline passed before the call was sent.");
        ulong id = (ulong)Interlocked.Increment(ref _nextRequestId);
        var answer = new TaskCompletionSource<PeerResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = answer;
        Touch();
        var message = new OutgoingMessage(FrameKind.Request, id, Envelope(request, remaining), request.Payload);
        var queued = _channel.Queue(message);
        if (queued != QueueOutcome.Queued)
        {
            _pending.TryRemove(id, out _);
            return queued == QueueOutcome.Refused
                ? PeerResponse.Error(StatusCode.ResourceExhausted, $"{request.Method} to {RemotePeer}: too much already waits to be sent on this connection; try again when it has drained.")
                : Unavailable(request.Method);
        }
        using var deadline = new CancellationTokenSource(remaining, _time);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            var response = await answer.Task.WaitAsync(wait.Token);
            Touch();
            return response;
        }
        catch (OperationCanceledException)
        {
            Withdraw(id, message);
            cancellationToken.ThrowIfCancellationRequested();
            return PeerResponse.Error(StatusCode.DeadlineExceeded,
                $"{request.Method} to {RemotePeer} at {Endpoint.Address}: no answer within {remaining.TotalMilliseconds:F0} ms.");
        }
        finally
        {
            // The payload belongs to the caller again only once the writer has let go of it. A peer that has
            // not taken the request's bytes by SendGrace past the deadline has stopped reading: the connection
            // is cut (its other calls fail Unavailable) rather than hold the caller until keep-alive notices.
            if (!message.Sent.Task.IsCompleted)
            {
                try
                {
                    await message.Sent.Task.WaitAsync(SendGrace, _time);
                }
                catch (TimeoutException)
                {
                    _channel.Abort($"{RemotePeer} took no more bytes of {request.Method} for {SendGrace.TotalSeconds:F0} s past its deadline; it has stopped reading");
                    await message.Sent.Task;
                }
            }
        }
    }

    /// <summary>
    /// How long past a call's deadline its request may still be being written before the connection is cut:
    /// the writer stops a withdrawn request after its current frame, and a 1 MiB frame takes 2 s at 0.5 MB/s.
    /// </summary>
    public static readonly TimeSpan SendGrace = TimeSpan.FromSeconds(2);

    /// <summary>Sends a ping and waits for the pong; false when none comes within <paramref name="timeout"/>.</summary>
    public async Task<bool> PingAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var pong = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.Exchange(ref _pong, pong);
        if (!_channel.TrySendControl(FrameKind.Ping, 0, BitConverter.GetBytes(_time.GetTimestamp()))) return false;
        try
        {
            await pong.Task.WaitAsync(timeout, _time, cancellationToken);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>Closes the connection; calls in flight get Unavailable.</summary>
    public void Close(string reason) => _channel.Close(reason);

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await _channel.DisposeAsync();

    void IFrameSink.OnMessage(ReceivedMessage message)
    {
        if (!_pending.TryRemove(message.RequestId, out var answer))
        {
            message.Dispose();
            return;
        }
        if (message.Error is not null)
        {
            message.Dispose();
            answer.TrySetResult(PeerResponse.Error(message.ErrorStatus, $"response from {RemotePeer} refused: {message.Error}"));
            return;
        }
        var envelope = ResponseEnvelope.Parser.ParseFrom(message.Envelope);
        var response = new PeerResponse(envelope.Status, envelope.Message, envelope.Header.Memory, message.Payload.Memory, message.Payload);
        if (!answer.TrySetResult(response)) response.Dispose();
    }

    void IFrameSink.OnCancel(ulong requestId)
    {
    }

    void IFrameSink.OnPong() => Volatile.Read(ref _pong)?.TrySetResult();

    void IFrameSink.OnClosed(string reason)
    {
        foreach (var id in _pending.Keys)
            if (_pending.TryRemove(id, out var answer))
                answer.TrySetResult(PeerResponse.Error(StatusCode.Unavailable, $"Connection to {RemotePeer} at {Endpoint.Address} closed: {reason}."));
    }

    private static async Task ConnectSocketAsync(Socket socket, PeerAddress address, PeerProtocolOptions options, CancellationToken limit, CancellationToken caller)
    {
        try
        {
            await socket.ConnectAsync(address.Host, address.Port, limit);
        }
        catch (OperationCanceledException) when (!caller.IsCancellationRequested)
        {
            throw new SocketException((int)SocketError.TimedOut, $"no TCP connection within {options.ConnectTimeout.TotalMilliseconds:F0} ms");
        }
    }

    private static byte[] Envelope(PeerRequest request, TimeSpan remaining)
    {
        var envelope = new RequestEnvelope
        {
            Method = request.Method,
            DeadlineMicros = Math.Max(1, (long)(remaining.Ticks / 10)),
            Header = ByteString.CopyFrom(request.Header.Span),
            PayloadLength = (ulong)request.Payload.Length,
        };
        return WithLengthPrefix(envelope);
    }

    internal static byte[] WithLengthPrefix(IMessage envelope)
    {
        int size = envelope.CalculateSize();
        var bytes = new byte[4 + size];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)size);
        envelope.WriteTo(bytes.AsSpan(4));
        return bytes;
    }

    private void Withdraw(ulong id, OutgoingMessage message)
    {
        message.Abandoned = true;
        if (_pending.TryRemove(id, out var answer) && answer.Task.IsCompletedSuccessfully) answer.Task.Result.Dispose();
        _channel.TrySendControl(FrameKind.Cancel, id);
    }

    private PeerResponse Unavailable(string method) =>
        PeerResponse.Error(StatusCode.Unavailable, $"{method} to {RemotePeer} at {Endpoint.Address}: connection closed: {_channel.CloseReason}.");

    private void Touch() => Interlocked.Exchange(ref _lastActivity, _time.GetTimestamp());
}

/// <summary>A peer could not be reached: connect, relay, TLS or handshake failed.</summary>
public sealed class PeerUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A relay refused to splice a connection (the peer holds no reservation there, or the relay is at a limit).</summary>
public sealed class RelayRefusedException(string message) : Exception(message);
