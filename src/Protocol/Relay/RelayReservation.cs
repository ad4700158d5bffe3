using System.Net;
using Microsoft.Extensions.Logging;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Protocol.Relay;

/// <summary>
/// A place held at one relay by a peer nobody can dial: it keeps a <c>relay.listen</c> call waiting on its
/// outbound connection and answers each circuit the relay hands it with a fresh connection to the relay,
/// which it then serves as if a caller had dialled it (TLS, handshake, requests: see
/// <see cref="PeerServer.HandleStreamAsync(Stream, EndPoint, bool, CancellationToken)"/>). <see cref="Lost"/> completes, with the reason, when the relay
/// stops answering; the owner then reserves elsewhere and announces the new address.
/// </summary>
public sealed partial class RelayReservation : IAsyncDisposable
{
    /// <summary>Consecutive failed listen calls after which the relay counts as lost (one that timed out is enough).</summary>
    private const int FailuresToLose = 2;

    /// <summary>Relayed connections this peer serves at once through one relay; ids beyond them are not answered.</summary>
    private const int MaxOpenCircuits = 256;

    /// <summary>How much before its deadline a timed-out listen call may end and still count as having waited it out (timers are not exact).</summary>
    private static readonly TimeSpan DeadlineSlack = TimeSpan.FromMilliseconds(100);

    /// <summary>The least time between listen calls whose answers came back empty.</summary>
    private static readonly TimeSpan MinListenInterval = TimeSpan.FromSeconds(1);

    private readonly PeerServer _server;
    private readonly IPeerTransport _transport;
    private readonly PeerProtocolOptions _protocol;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TimeSpan _keep;
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource<string> _lost = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TrackedTasks _circuits = new();
    private readonly Task _listening;
    private long _accepted;
    private int _disposed;

    private RelayReservation(PeerEndpoint relay, TimeSpan keep, PeerServer server, IPeerTransport transport, PeerProtocolOptions protocol, TimeProvider time, ILogger logger)
    {
        Relay = relay;
        _keep = keep;
        _server = server;
        _transport = transport;
        _protocol = protocol;
        _time = time;
        _logger = logger;
        _listening = Task.Run(ListenLoopAsync);
    }

    /// <summary>The relay.</summary>
    public PeerEndpoint Relay { get; }

    /// <summary>The address to announce: callers reach this node there, through the relay.</summary>
    public PeerAddress Address => Relay.Address.ThroughRelay;

    /// <summary>Completes with the reason once the relay stops answering.</summary>
    public Task<string> Lost => _lost.Task;

    /// <summary>Relayed connections taken so far.</summary>
    public long Accepted => Interlocked.Read(ref _accepted);

    /// <summary>Reserves a place at <paramref name="relay"/> (its PeerId known) and starts listening there.</summary>
    /// <exception cref="RelayRefusedException">The relay refused or did not answer; the message says why.</exception>
    public static async Task<RelayReservation> ReserveAsync(PeerEndpoint relay, PeerServer server, IPeerTransport transport, PeerProtocolOptions protocol, TimeProvider time,
        ILogger logger, CancellationToken cancellationToken)
    {
        var keep = await ReserveOnceAsync(relay, transport, protocol, time, cancellationToken);
        return new RelayReservation(relay, keep, server, transport, protocol, time, logger);
    }

    private static async Task<TimeSpan> ReserveOnceAsync(PeerEndpoint relay, IPeerTransport transport, PeerProtocolOptions protocol, TimeProvider time, CancellationToken cancellationToken)
    {
        using var response = await transport.CallAsync(relay, PeerRequest.Create(RelayService.ReserveMethod, null, default, time.GetUtcNow() + protocol.HandshakeTimeout), cancellationToken);
        if (response.Status != StatusCode.Ok) throw new RelayRefusedException($"{relay} did not reserve a place: {response.Message}");
        long keep;
        try
        {
            keep = response.ParseHeader(RelayReserveResponse.Parser).KeepMillis;
        }
        catch (PeerRpcException e)
        {
            throw new RelayRefusedException($"{relay} answered a reservation with garbage: {e.Message}");
        }
        // What a relay says is untrusted: a keep time outside a second to ten minutes is not taken.
        return keep is >= 1_000 and <= 600_000 ? TimeSpan.FromMilliseconds(keep) : throw new RelayRefusedException($"{relay} answered a keep time of {keep} ms; 1 s to 10 min expected");
    }

    private async Task ListenLoopAsync()
    {
        var stopping = _stopping.Token;
        int failures = 0;
        string reason = "no answer";
        try
        {
            while (failures < FailuresToLose)
            {
                // The relay answers within its listen window (half the keep time); this waits a little longer.
                long asked = _time.GetTimestamp();
                var deadline = _time.GetUtcNow() + _keep / 2 + _protocol.HandshakeTimeout;
                using var response = await _transport.CallAsync(Relay, PeerRequest.Create(RelayService.ListenMethod, null, default, deadline), stopping);
                if (response.Status == StatusCode.Ok && TryCircuits(response, out var circuits))
                {
                    failures = 0;
                    foreach (var circuit in circuits) _circuits.Add(AcceptAsync(circuit, stopping));
                    // A relay that answers empty at once would have this loop spin: it asks at most once a second then.
                    if (circuits.Count == 0 && _time.GetElapsedTime(asked) < MinListenInterval) await Task.Delay(MinListenInterval, _time, stopping);
                    continue;
                }
                // A live relay answers within its listen window, before this call's deadline: a call that waited out its
                // deadline means the relay has gone silent (dead without a word, or cut off), and it counts as lost at once.
                // (The call's own timer ends it at its deadline; a relay that says DeadlineExceeded sooner is only failing.)
                bool waitedOut = response.Status == StatusCode.DeadlineExceeded && _time.GetUtcNow() >= deadline - DeadlineSlack;
                failures = waitedOut ? FailuresToLose : failures + 1;
                reason = response.Status == StatusCode.Ok ? "its listen answer is malformed" : response.Message;
                try
                {
                    // A lapsed reservation (the relay restarted, or this node was away) is made again, after a pause.
                    await Task.Delay(_protocol.ReconnectBackoff, _time, stopping);
                    if (response.Status == StatusCode.NotFound) await ReserveOnceAsync(Relay, _transport, _protocol, _time, stopping);
                }
                catch (RelayRefusedException e)
                {
                    reason = e.Message;
                    failures = FailuresToLose;
                }
            }
            LogLost(_logger, Relay.ToString(), reason);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            reason = "the reservation was given up";
        }
        catch (Exception e)
        {
            reason = $"listening failed: {e.Message}";
            LogLost(_logger, Relay.ToString(), reason);
        }
        finally
        {
            _lost.TrySetResult(reason);
        }
    }

    /// <summary>The circuit ids of a listen answer: 16 bytes each, at most as many as this peer takes at once; false when malformed.</summary>
    private bool TryCircuits(PeerResponse response, out List<byte[]> circuits)
    {
        circuits = [];
        RelayListenResponse answer;
        try
        {
            answer = response.ParseHeader(RelayListenResponse.Parser);
        }
        catch (PeerRpcException)
        {
            return false;
        }
        if (answer.Circuits.Any(c => c.Length != RelayPreamble.CircuitIdBytes)) return false;
        int room = MaxOpenCircuits - _circuits.Count;
        circuits = answer.Circuits.Take(Math.Max(0, room)).Select(c => c.ToByteArray()).ToList();
        return true;
    }

    /// <summary>Opens the circuit's connection to the relay and serves it until it closes.</summary>
    private async Task AcceptAsync(byte[] circuit, CancellationToken stopping)
    {
        Stream? stream = null;
        try
        {
            stream = await PeerConnection.DialAsync(Relay.Address, _protocol, _time, stopping);
            using (var limit = new CancellationTokenSource(_protocol.HandshakeTimeout, _time))
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(limit.Token, stopping))
            {
                await RelayPreamble.WriteAcceptAsync(stream, circuit, linked.Token);
                if (await RelayPreamble.ReadAnswerAsync(stream, linked.Token) is { } refusal)
                {
                    LogCircuitRefused(_logger, Relay.ToString(), refusal);
                    return;
                }
            }
            Interlocked.Increment(ref _accepted);
            await _server.HandleStreamAsync(stream, RemoteOf(Relay.Address), throughRelay: true, stopping);
        }
        catch (Exception e)
        {
            // One circuit failing (the relay gone, a refusal, a stop) ends that circuit only.
            LogCircuitRefused(_logger, Relay.ToString(), e.Message);
        }
        finally
        {
            if (stream is not null) await stream.DisposeAsync();
        }
    }

    private static EndPoint? RemoteOf(PeerAddress address) => IPAddress.TryParse(address.Host, out var ip) ? new IPEndPoint(ip, address.Port) : null;

    /// <summary>Gives the place up: stops listening and closes the relayed connections. Safe to call more than once.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        await _stopping.CancelAsync();
        await _listening;
        await _circuits.WhenAllAsync();
        _stopping.Dispose();
    }

    [LoggerMessage(EventId = 240, Level = LogLevel.Warning, Message = "Relay {Relay} lost: {Reason}")]
    private static partial void LogLost(ILogger logger, string relay, string reason);

    [LoggerMessage(EventId = 241, Level = LogLevel.Debug, Message = "A relayed connection through {Relay} failed: {Reason}")]
    private static partial void LogCircuitRefused(ILogger logger, string relay, string reason);
}
