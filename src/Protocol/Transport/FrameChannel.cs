using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Channels;
using MoEMesh.Protocol.Framing;

namespace MoEMesh.Protocol.Transport;

/// <summary>
/// The multiplexed half of a connection, after the handshake: one loop reads frames and rebuilds
/// messages, one loop writes queued messages a frame at a time in turn, so a 64 MiB tensor moves in
/// 1 MiB frames with small calls slipping in between. Any framing violation sends a GoAway naming it and
/// closes the connection; other connections are untouched. So does a peer that holds a message unfinished
/// past MessageTimeout (even by going silent), that takes no bytes for MessageTimeout while messages wait
/// for it, or that pings past MaxQueuedMessagesPerConnection without reading; a message beyond the send
/// queue's limits (messages or bytes) is refused. A connection on which nothing has arrived for IdleTimeout
/// (not even a keep-alive ping) and nothing waits is closed, so idle connections cannot hold a server's slots.
/// </summary>
internal sealed class FrameChannel : IAsyncDisposable
{
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly IFrameSink _sink;
    private readonly FrameKind[] _accepted;
    private readonly bool _server;
    private readonly MessageAssembler _assembler;
    private readonly Channel<OutgoingMessage> _outgoing = Channel.CreateUnbounded<OutgoingMessage>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _closing = new();
    private readonly IAsyncDisposable? _transport;
    private readonly Stream? _directStream;
    private readonly TimeProvider _time;
    private readonly PeerProtocolOptions _options;
    private readonly ITimer _stallWatch;
    private ITimer? _closeGrace;
    private long _queuedBytes, _lastRead, _lastWrite;
    private int _queuedMessages;
    private static readonly TimeSpan CloseGrace = TimeSpan.FromSeconds(1);

    /// <summary>Payload chunks from this size on bypass the pipe (one copy fewer); smaller ones are batched in it.</summary>
    private const int DirectWriteFrom = 64 * 1024;
    private Task _reading = Task.CompletedTask, _writing = Task.CompletedTask;
    private string? _closeReason;

    /// <param name="input">Bytes from the peer, positioned after the handshake.</param>
    /// <param name="output">Bytes to the peer.</param>
    /// <param name="sink">Receives messages and events.</param>
    /// <param name="accepted">Message kinds this side accepts (Request on a server, Response on a client).</param>
    /// <param name="options">Limits.</param>
    /// <param name="time">Clock for the grace period given to a GoAway before the loops stop.</param>
    /// <param name="transport">Disposed when the channel closes (socket, TLS stream), or null.</param>
    /// <param name="directStream">
    /// The stream under <paramref name="output"/>, when there is one: large payload chunks are written to it
    /// directly after flushing the frame header, saving a copy per byte. Null for transports whose pipe is
    /// the only way in (Kestrel).
    /// </param>
    public FrameChannel(PipeReader input, PipeWriter output, IFrameSink sink, FrameKind[] accepted, PeerProtocolOptions options, TimeProvider time,
        IAsyncDisposable? transport, Stream? directStream = null)
    {
        _directStream = directStream;
        _time = time;
        _input = input;
        _output = output;
        _sink = sink;
        _accepted = accepted;
        // A server's channel takes requests; a client's, responses.
        _server = accepted.Contains(FrameKind.Request);
        _transport = transport;
        _options = options;
        _assembler = new MessageAssembler(options.MaxMessageBytes, options.MaxBufferedBytesPerConnection, options.MaxUnfinishedMessagesPerConnection, options.MessageTimeout, time);
        _lastRead = _lastWrite = time.GetTimestamp();
        // A silent peer sends no frames for the read loop to check, so a timer looks too.
        var period = (options.MessageTimeout < options.IdleTimeout ? options.MessageTimeout : options.IdleTimeout) / 4;
        _stallWatch = time.CreateTimer(static c => ((FrameChannel)c!).CloseIfStalled(), this, period, period);
    }

    /// <summary>Why the channel closed, or null while open.</summary>
    public string? CloseReason => _closeReason;

    /// <summary>Completes when both loops have ended.</summary>
    public Task Completion => Task.WhenAll(_reading, _writing);

    /// <summary>Starts the loops.</summary>
    public void Start()
    {
        _reading = Task.Run(ReadLoopAsync);
        _writing = Task.Run(WriteLoopAsync);
    }

    /// <summary>Queues a message; false when it was not (see <see cref="Queue"/>).</summary>
    public bool TrySend(OutgoingMessage message) => Queue(message) == QueueOutcome.Queued;

    /// <summary>
    /// Queues a message: Closed once the channel is closing; Refused when MaxQueuedMessagesPerConnection
    /// messages or MaxQueuedBytesPerConnection bytes already wait to be sent (a control frame over the limit,
    /// such as the pong of a peer that pings without reading, closes the channel instead).
    /// </summary>
    public QueueOutcome Queue(OutgoingMessage message)
    {
        int messages = Interlocked.Increment(ref _queuedMessages);
        long bytes = Interlocked.Add(ref _queuedBytes, message.TotalLength);
        if (messages > _options.MaxQueuedMessagesPerConnection || bytes > _options.MaxQueuedBytesPerConnection)
        {
            if (!message.IsMultiFrame)
                Close($"the peer is not reading: {messages} messages ({bytes} bytes) queued for it; limits {_options.MaxQueuedMessagesPerConnection} and {_options.MaxQueuedBytesPerConnection} bytes");
            Dequeued(message);
            return _closeReason is null ? QueueOutcome.Refused : QueueOutcome.Closed;
        }
        if (_closeReason is not null || !_outgoing.Writer.TryWrite(message))
        {
            Dequeued(message);
            return QueueOutcome.Closed;
        }
        return QueueOutcome.Queued;
    }

    /// <summary>Queues a control frame (cancel, ping, pong, go-away).</summary>
    public bool TrySendControl(FrameKind kind, ulong requestId, ReadOnlyMemory<byte> body = default) =>
        TrySend(new OutgoingMessage(kind, requestId, body));

    /// <summary>Sends a GoAway with <paramref name="reason"/> (best effort) and closes.</summary>
    public void Close(string reason)
    {
        if (Interlocked.CompareExchange(ref _closeReason, reason, null) is not null) return;
        var goAway = new OutgoingMessage(FrameKind.GoAway, 0, System.Text.Encoding.UTF8.GetBytes(Truncate(reason)));
        Interlocked.Increment(ref _queuedMessages);
        Interlocked.Add(ref _queuedBytes, goAway.TotalLength);
        if (!_outgoing.Writer.TryWrite(goAway)) Dequeued(goAway);
        _outgoing.Writer.TryComplete();
        // The writer gets a moment to flush the GoAway; then both loops are stopped.
        _closeGrace = _time.CreateTimer(static state => CancelQuietly((CancellationTokenSource)state!), _closing, CloseGrace, Timeout.InfiniteTimeSpan);
        _sink.OnClosed(reason);
    }

    /// <summary>Closes at once, without waiting for queued bytes: for a peer that has stopped reading.</summary>
    public void Abort(string reason)
    {
        Close(reason);
        CancelQuietly(_closing);
    }

    /// <summary>
    /// Stops the loops. The channel may have been disposed already (a Close racing DisposeAsync arms its grace
    /// timer after the dispose looked for it): then nothing is left to stop.
    /// </summary>
    private static void CancelQuietly(CancellationTokenSource closing)
    {
        try
        {
            closing.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        Close("connection disposed");
        await _closing.CancelAsync();
        try
        {
            await Completion;
        }
        catch (Exception)
        {
            // Loops end in errors when the transport is torn down under them; the reason is already recorded.
        }
        if (_closeGrace is not null) await _closeGrace.DisposeAsync();
        await _stallWatch.DisposeAsync();
        _assembler.Dispose();
        if (_transport is not null) await _transport.DisposeAsync();
        _closing.Dispose();
    }

    private async Task ReadLoopAsync()
    {
        string reason = "peer closed the connection";
        var frames = new FrameReader(_assembler, _accepted);
        var events = new Events(this);
        try
        {
            while (true)
            {
                var result = await _input.ReadAsync(_closing.Token);
                Interlocked.Exchange(ref _lastRead, _time.GetTimestamp());
                var buffer = result.Buffer;
                try
                {
                    frames.Process(ref buffer, events);
                    _assembler.ThrowIfStalled();
                }
                finally
                {
                    // What the frame reader consumed of this read: measured before the buffer is handed back.
                    TransportMetrics.Add(result.Buffer.Length - buffer.Length, sent: false, _server);
                    _input.AdvanceTo(buffer.Start, buffer.End);
                }
                if (events.GoAwayReason is { } goAway)
                {
                    reason = goAway;
                    return;
                }
                if (result.IsCompleted)
                {
                    if (!buffer.IsEmpty) reason = "peer closed the connection inside a frame";
                    return;
                }
            }
        }
        catch (ProtocolViolationException e)
        {
            reason = e.Message;
        }
        catch (OperationCanceledException)
        {
            reason = _closeReason ?? "connection closed";
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException or InvalidOperationException)
        {
            reason = $"connection lost: {e.Message}";
        }
        catch (Exception e)
        {
            // Whatever else a peer's bytes provoke ends this connection, never the process.
            reason = $"connection failed: {e.GetType().Name}: {e.Message}";
        }
        finally
        {
            Close(reason);
            await _input.CompleteAsync();
        }
    }

    /// <summary>
    /// Closes the channel when a message has been unfinished and the peer silent for MessageTimeout, or when
    /// messages wait to be sent and the peer has taken no frame for MessageTimeout (it stopped reading).
    /// </summary>
    private void CloseIfStalled()
    {
        if (_assembler.Unfinished > 0 && _time.GetElapsedTime(Interlocked.Read(ref _lastRead)) > _options.MessageTimeout)
            Close($"a message stayed unfinished with the peer silent for {_options.MessageTimeout.TotalSeconds:F0} s");
        else if (Volatile.Read(ref _queuedMessages) > 0 && _time.GetElapsedTime(Interlocked.Read(ref _lastWrite)) > _options.MessageTimeout)
            Abort($"the peer has taken no bytes for {_options.MessageTimeout.TotalSeconds:F0} s while messages wait for it");
        else if (Volatile.Read(ref _queuedMessages) == 0 && _assembler.Unfinished == 0 && _time.GetElapsedTime(Interlocked.Read(ref _lastRead)) > _options.IdleTimeout)
            Close($"nothing arrived for {_options.IdleTimeout.TotalSeconds:F0} s (not even a keep-alive)");
    }

    private void Dequeued(OutgoingMessage message)
    {
        Interlocked.Decrement(ref _queuedMessages);
        Interlocked.Add(ref _queuedBytes, -message.TotalLength);
        message.Sent.TrySetResult();
    }

    /// <summary>Routes what the frame reader finds: messages to the sink, control frames handled here.</summary>
    private sealed class Events(FrameChannel channel) : IFrameEvents
    {
        public string? GoAwayReason { get; private set; }

        public void OnMessage(ReceivedMessage message) => channel._sink.OnMessage(message);

        public void OnControl(FrameHeader header, ReadOnlySequence<byte> body)
        {
            switch (header.Kind)
            {
                case FrameKind.Cancel:
                    channel._assembler.Discard(header.RequestId);
                    channel._sink.OnCancel(header.RequestId);
                    break;
                case FrameKind.Ping:
                    if (body.Length > 64) throw new ProtocolViolationException($"ping body of {body.Length} bytes exceeds 64");
                    channel.TrySendControl(FrameKind.Pong, header.RequestId, body.ToArray());
                    break;
                case FrameKind.Pong:
                    channel._sink.OnPong();
                    break;
                case FrameKind.GoAway:
                    GoAwayReason ??= "peer closed the connection: " + System.Text.Encoding.UTF8.GetString(body.ToArray());
                    break;
                default:
                    throw new ProtocolViolationException($"unexpected {header.Kind} frame on an established connection");
            }
        }
    }

    private async Task WriteLoopAsync()
    {
        // The message being written is out of the queue; if writing fails, its owner must still hear it is done.
        OutgoingMessage? writing = null;
        try
        {
            var reader = _outgoing.Reader;
            while (await reader.WaitToReadAsync(_closing.Token))
            {
                long unflushed = 0;
                while (reader.TryRead(out var message))
                {
                    writing = message;
                    if (message.Abandoned && !message.IsComplete)
                    {
                        Dequeued(message);
                        writing = null;
                        continue;
                    }
                    int framed = message.WriteNextFrame(_output, _directStream is null ? int.MaxValue : DirectWriteFrom, out var deferred);
                    unflushed += framed;
                    TransportMetrics.Add(framed + deferred.Length, sent: true, _server);
                    if (!deferred.IsEmpty)
                    {
                        await _output.FlushAsync(_closing.Token);
                        await _directStream!.WriteAsync(deferred, _closing.Token);
                        unflushed = 0;
                        Interlocked.Exchange(ref _lastWrite, _time.GetTimestamp());
                    }
                    if (message.IsComplete || !_outgoing.Writer.TryWrite(message)) Dequeued(message);
                    writing = null;
                    if (unflushed >= FrameHeader.MaxBody)
                    {
                        await _output.FlushAsync(_closing.Token);
                        unflushed = 0;
                        Interlocked.Exchange(ref _lastWrite, _time.GetTimestamp());
                    }
                }
                await _output.FlushAsync(_closing.Token);
                Interlocked.Exchange(ref _lastWrite, _time.GetTimestamp());
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or System.Net.Sockets.SocketException or ObjectDisposedException or InvalidOperationException)
        {
            Close(_closeReason ?? $"connection lost while writing: {e.Message}");
        }
        finally
        {
            if (writing is not null) Dequeued(writing);
            while (_outgoing.Reader.TryRead(out var left)) Dequeued(left);
            await _output.CompleteAsync();
        }
    }

    private static string Truncate(string reason) => reason.Length <= 512 ? reason : reason[..512];
}

/// <summary>What became of a message handed to a <see cref="FrameChannel"/>.</summary>
internal enum QueueOutcome
{
    /// <summary>It will be sent.</summary>
    Queued,

    /// <summary>Too much already waits to be sent; the channel stays open.</summary>
    Refused,

    /// <summary>The channel is closing.</summary>
    Closed,
}
