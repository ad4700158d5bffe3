using System.Collections.Concurrent;
using MoEMesh.Protocol.Framing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Protocol.Transport;

/// <summary>
/// The listener's side of one connection after the handshake: each request runs as its own tracked task
/// with a token that fires at its deadline or on a cancel frame; answers go back through the channel.
/// </summary>
internal sealed class ServerConnection(PeerId caller, System.Net.IPAddress? remoteAddress, bool throughRelay, PeerRouter router, PeerProtocolOptions options, TimeProvider time) : IFrameSink
{
    private readonly ConcurrentDictionary<ulong, CancellationTokenSource> _running = new();
    private readonly CancellationTokenSource _closed = new();
    private FrameChannel _channel = null!;

    public void Attach(FrameChannel channel) => _channel = channel;

    public void OnMessage(ReceivedMessage message)
    {
        if (message.Error is not null)
        {
            Answer(message.RequestId, PeerResponse.Error(message.ErrorStatus, message.Error));
            message.Dispose();
            return;
        }
        var envelope = RequestEnvelope.Parser.ParseFrom(message.Envelope);
        if (envelope.DeadlineMicros <= 0 || envelope.Method.Length == 0)
        {
            message.Dispose();
            Answer(message.RequestId, PeerResponse.Error(StatusCode.InvalidArgument,
                envelope.Method.Length == 0 ? "request has no method" : $"{envelope.Method}: request carries no time (deadline_micros = {envelope.DeadlineMicros}); every call needs a finite deadline > 0"));
            return;
        }
        if (_running.Count >= options.MaxConcurrentRequestsPerConnection)
        {
            message.Dispose();
            Answer(message.RequestId, PeerResponse.Error(StatusCode.ResourceExhausted,
                $"{envelope.Method}: {_running.Count} requests already running on this connection; limit {options.MaxConcurrentRequestsPerConnection}"));
            return;
        }
        // A caller's time is believed up to the node's maximum: beyond it timers cannot even be set.
        var remaining = TimeSpan.FromTicks(Math.Min(envelope.DeadlineMicros, options.MaxRequestTime.Ticks / 10) * 10);
        var request = new PeerRequest(envelope.Method, envelope.Header.Memory, message.Payload.Memory, time.GetUtcNow() + remaining, message.Payload) { Caller = caller, RemoteAddress = remoteAddress, ThroughRelay = throughRelay };
        var cancel = CancellationTokenSource.CreateLinkedTokenSource(_closed.Token);
        if (!_running.TryAdd(message.RequestId, cancel))
        {
            cancel.Dispose();
            request.Dispose();
            Answer(message.RequestId, PeerResponse.Error(StatusCode.InvalidArgument, $"request id {message.RequestId} is already in use on this connection"));
            return;
        }
        _ = RunAsync(message.RequestId, request, cancel, remaining);
    }

    public void OnCancel(ulong requestId)
    {
        if (_running.TryGetValue(requestId, out var cancel)) cancel.Cancel();
    }

    public void OnPong()
    {
    }

    public void OnClosed(string reason) => _closed.Cancel();

    /// <summary>Runs one request; every path ends in exactly one answer (none once the caller cancelled).</summary>
    private async Task RunAsync(ulong id, PeerRequest request, CancellationTokenSource cancel, TimeSpan remaining)
    {
        await Task.Yield();
        try
        {
            using var deadline = new CancellationTokenSource(remaining, time);
            using var token = CancellationTokenSource.CreateLinkedTokenSource(cancel.Token, deadline.Token);
            var response = await router.DispatchAsync(request, token.Token);
            if (cancel.IsCancellationRequested && response.Status == StatusCode.Cancelled)
            {
                response.Dispose();
                return;
            }
            if (deadline.IsCancellationRequested && response.Status == StatusCode.Cancelled)
            {
                // The deadline timer and the wall clock can disagree by a hair: the caller did not cancel, time ran out.
                response.Dispose();
                response = PeerRouter.DeadlinePassed(request.Method);
            }
            Answer(id, response);
        }
        finally
        {
            _running.TryRemove(id, out _);
            cancel.Dispose();
            request.Dispose();
        }
    }

    private void Answer(ulong id, PeerResponse response)
    {
        var envelope = new ResponseEnvelope
        {
            Status = response.Status,
            Message = response.Message,
            Header = Google.Protobuf.ByteString.CopyFrom(response.Header.Span),
            PayloadLength = (ulong)response.Payload.Length,
        };
        var message = new OutgoingMessage(FrameKind.Response, id, PeerConnection.WithLengthPrefix(envelope), response.Payload);
        _channel.TrySend(message);
        _ = message.Sent.Task.ContinueWith(static (_, r) => ((PeerResponse)r!).Dispose(), response, TaskScheduler.Default);
    }
}
