using System.Buffers;
using System.Security.Cryptography;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Settings;

namespace MoEMesh.Protocol.Relay;

/// <summary>
/// A relay for peers nobody can dial. A peer reserves a place (<c>relay.reserve</c>) and keeps a
/// <c>relay.listen</c> call waiting on its own outbound connection. A caller opens a connection here with the
/// Connect preamble naming the peer; the relay hands the peer a circuit id through its waiting listen call,
/// the peer opens a fresh connection here with the Accept preamble and that id, and the relay splices the
/// two: from then on it copies bytes, within <see cref="RelayOptions.BytesPerSecond"/>. TLS and the handshake
/// run end to end between caller and peer over the splice, so the relay sees ciphertext it can neither
/// read nor change unnoticed, and cannot pass for the peer.
/// </summary>
public sealed partial class RelayService : IDisposable
{
    /// <summary>Reserve a place (no header; answer <c>RelayReserveResponse</c>).</summary>
    public const string ReserveMethod = "relay.reserve";

    /// <summary>Wait for circuits (no header; answer <c>RelayListenResponse</c>).</summary>
    public const string ListenMethod = "relay.listen";

    private const int PumpBufferBytes = 256 * 1024;

    private readonly RelayOptions _options;
    private readonly PeerProtocolOptions _protocol;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ByteBudget _budget;
    private readonly Dictionary<PeerId, Reservation> _reservations = [];
    private readonly Dictionary<string, Circuit> _unanswered = new(StringComparer.Ordinal);
    private int _circuits;
    private long _bytes, _spliced, _refused;

    /// <summary>Creates a relay; map its methods with <see cref="Map"/> and set it as the server's <see cref="Transport.PeerServer.Relay"/>.</summary>
    public RelayService(RelayOptions options, PeerProtocolOptions protocol, TimeProvider time, ILogger<RelayService>? logger = null)
    {
        SettingsValidation.ThrowIfInvalid(options);
        _options = options;
        _protocol = protocol;
        _time = time;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _budget = new ByteBudget(options.BytesPerSecond, time);
    }

    /// <summary>
    /// Why this node cannot relay now (it is not reachable itself, say), or null when it can. Asked on every
    /// reservation.
    /// </summary>
    public Func<string?> CannotRelay { get; set; } = () => null;

    /// <summary>Peers holding a reservation now.</summary>
    public int Reservations
    {
        get
        {
            lock (_reservations) return _reservations.Values.Count(r => !r.Lapsed(Now, KeepFor));
        }
    }

    /// <summary>Circuits spliced or being set up now.</summary>
    public int Circuits => Volatile.Read(ref _circuits);

    /// <summary>Bytes copied between callers and peers since start.</summary>
    public long BytesRelayed => Interlocked.Read(ref _bytes);

    /// <summary>Circuits spliced since start.</summary>
    public long CircuitsSpliced => Interlocked.Read(ref _spliced);

    /// <summary>Reservations and circuits refused since start (limits, no reservation, the peer did not answer).</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>For tests: sees (and may change) every chunk the relay copies; true when it goes toward the relayed peer.</summary>
    internal Action<Memory<byte>, bool>? Tap { get; set; }

    private DateTimeOffset Now => _time.GetUtcNow();

    private TimeSpan KeepFor => 2 * _options.ListenWindow;

    /// <summary>Registers <c>relay.reserve</c> and <c>relay.listen</c>.</summary>
    public void Map(PeerRouter router) => router.Map(ReserveMethod, Reserve).Map(ListenMethod, ListenAsync);

    private ValueTask<PeerResponse> Reserve(PeerRequest request, CancellationToken cancellationToken)
    {
        if (!_options.Serve) return Refuse(StatusCode.Unavailable, $"{ReserveMethod}: this node does not relay (Relay:Serve is off).");
        if (CannotRelay() is { } why) return Refuse(StatusCode.Unavailable, $"{ReserveMethod}: this node does not relay now: {why}.");
        lock (_reservations)
        {
            Purge();
            if (!_reservations.ContainsKey(request.Caller))
            {
                if (_reservations.Count >= _options.MaxReservations)
                    return Refuse(StatusCode.ResourceExhausted, $"{ReserveMethod}: this relay holds its limit of {_options.MaxReservations} reservations; try another relay.");
                string? network = request.RemoteAddress is { } from ? AddressNetwork.Of(from) : null;
                if (network is not null && _reservations.Values.Count(r => r.Network == network) >= _options.MaxReservationsPerNetwork)
                    return Refuse(StatusCode.ResourceExhausted, $"{ReserveMethod}: peers of {network} hold this relay's limit of {_options.MaxReservationsPerNetwork} reservations per network; try another relay.");
                _reservations[request.Caller] = new Reservation(request.Caller, network, _options.MaxCircuitsPerPeer);
                LogReserved(_logger, request.Caller.ToString());
            }
            _reservations[request.Caller].Seen(Now);
        }
        return ValueTask.FromResult(PeerResponse.Ok(new RelayReserveResponse { KeepMillis = (long)KeepFor.TotalMilliseconds }));
    }

    private async ValueTask<PeerResponse> ListenAsync(PeerRequest request, CancellationToken cancellationToken)
    {
        Reservation? reservation;
        lock (_reservations)
        {
            Purge();
            if (_reservations.TryGetValue(request.Caller, out reservation)) reservation.Listening(Now, +1);
        }
        if (reservation is null) return PeerResponse.Error(StatusCode.NotFound, $"{ListenMethod}: {request.Caller} holds no reservation here (it lapsed, or the relay restarted); call {ReserveMethod} first.");
        try
        {
            // Answer a little before the caller's deadline, so the answer arrives while it still waits.
            var window = TimeSpan.FromTicks(Math.Min(_options.ListenWindow.Ticks, (request.Deadline - _time.GetUtcNow() - TimeSpan.FromMilliseconds(500)).Ticks));
            if (window > TimeSpan.Zero && !reservation.Pending.Reader.TryPeek(out _))
            {
                using var limit = new CancellationTokenSource(window, _time);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(limit.Token, cancellationToken);
                try
                {
                    await reservation.Pending.Reader.WaitToReadAsync(linked.Token);
                }
                catch (OperationCanceledException) when (limit.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                }
            }
            var answer = new RelayListenResponse();
            // Ids of callers that gave up meanwhile are left out: the peer would dial for nothing.
            while (reservation.Pending.Reader.TryRead(out var circuit))
                lock (_reservations)
                    if (_unanswered.ContainsKey(Convert.ToHexString(circuit))) answer.Circuits.Add(Google.Protobuf.ByteString.CopyFrom(circuit));
            return PeerResponse.Ok(answer);
        }
        finally
        {
            lock (_reservations) reservation.Listening(Now, -1);
        }
    }

    /// <summary>Serves a connection that opened with the relay preamble (the magic read, <paramref name="kind"/> and its argument too).</summary>
    internal async Task ServeAsync(Stream stream, RelayRequestKind kind, byte[] argument, CancellationToken aborted)
    {
        if (kind == RelayRequestKind.Accept) await AcceptAsync(stream, argument, aborted);
        else await ConnectAsync(stream, PeerId.FromHash(argument), aborted);
    }

    /// <summary>A caller: find the peer's reservation, hand it a circuit, wait for its connection, splice.</summary>
    private async Task ConnectAsync(Stream caller, PeerId target, CancellationToken aborted)
    {
        var id = RandomNumberGenerator.GetBytes(RelayPreamble.CircuitIdBytes);
        var circuit = new Circuit();
        Reservation? reservation;
        string? refusal = null;
        lock (_reservations)
        {
            Purge();
            if (!_reservations.TryGetValue(target, out reservation) || reservation.Lapsed(Now, KeepFor)) refusal = $"{target} holds no reservation at this relay";
            else if (_circuits >= _options.MaxCircuits) refusal = $"the relay is at its limit of {_options.MaxCircuits} relayed connections";
            else if (reservation.Circuits >= _options.MaxCircuitsPerPeer) refusal = $"{target} is at this relay's limit of {_options.MaxCircuitsPerPeer} relayed connections per peer";
            else if (!reservation.Pending.Writer.TryWrite(id)) refusal = $"{target} has {_options.MaxCircuitsPerPeer} relayed connections waiting for it to take them";
            else
            {
                reservation.Circuits++;
                _circuits++;
                _unanswered[Convert.ToHexString(id)] = circuit;
            }
        }
        if (refusal is not null)
        {
            await RefuseAsync(caller, refusal, aborted);
            return;
        }
        try
        {
            Stream host;
            try
            {
                host = await circuit.Host.Task.WaitAsync(_protocol.HandshakeTimeout, _time, aborted);
            }
            catch (TimeoutException)
            {
                // Given up under the lock, so the peer's connection cannot be taken after this (or was taken just before).
                bool gaveUp;
                lock (_reservations)
                {
                    _unanswered.Remove(Convert.ToHexString(id));
                    gaveUp = circuit.Host.TrySetCanceled();
                }
                if (gaveUp)
                {
                    await RefuseAsync(caller, $"{target} did not take the relayed connection within {_protocol.HandshakeTimeout.TotalSeconds:F0} s", aborted);
                    return;
                }
                host = await circuit.Host.Task;
            }
            await RelayPreamble.WriteAnswerAsync(host, null, aborted);
            await RelayPreamble.WriteAnswerAsync(caller, null, aborted);
            Interlocked.Increment(ref _spliced);
            await SpliceAsync(caller, host, aborted);
        }
        finally
        {
            // Whatever ended the circuit (a timeout racing the peer's connection included) releases the peer's side.
            circuit.Done.TrySetResult();
            lock (_reservations)
            {
                _unanswered.Remove(Convert.ToHexString(id));
                reservation!.Circuits--;
                _circuits--;
            }
            circuit.Host.TrySetCanceled();
        }
    }

    /// <summary>A relayed peer's connection for a circuit: handed to the waiting caller, held until the splice ends.</summary>
    private async Task AcceptAsync(Stream host, byte[] id, CancellationToken aborted)
    {
        Circuit? circuit;
        lock (_reservations) _unanswered.Remove(Convert.ToHexString(id), out circuit);
        if (circuit is null || !circuit.Host.TrySetResult(host))
        {
            await RefuseAsync(host, "no caller waits for this circuit (it timed out)", aborted);
            return;
        }
        await circuit.Done.Task.WaitAsync(aborted).ContinueWith(static _ => { }, TaskScheduler.Default);
    }

    private async Task RefuseAsync(Stream stream, string reason, CancellationToken aborted)
    {
        Interlocked.Increment(ref _refused);
        LogRefused(_logger, reason);
        try
        {
            await RelayPreamble.WriteAnswerAsync(stream, reason, aborted);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
        }
    }

    /// <summary>Copies both ways until either side closes (or the relay stops), then closes both.</summary>
    private async Task SpliceAsync(Stream caller, Stream host, CancellationToken aborted)
    {
        using var done = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        var toHost = PumpAsync(caller, host, towardHost: true, done.Token);
        var toCaller = PumpAsync(host, caller, towardHost: false, done.Token);
        await Task.WhenAny(toHost, toCaller);
        await done.CancelAsync();
        await Task.WhenAll(toHost, toCaller);
    }

    /// <summary>
    /// Copies one direction. A buffer is held only while bytes move (an idle circuit waits with a zero-byte
    /// read), and a side that takes no bytes for <see cref="PeerProtocolOptions.MessageTimeout"/> ends the circuit.
    /// </summary>
    private async Task PumpAsync(Stream from, Stream to, bool towardHost, CancellationToken token)
    {
        try
        {
            while (true)
            {
                _ = await from.ReadAsync(Memory<byte>.Empty, token); // waits for bytes without holding a buffer
                var buffer = ArrayPool<byte>.Shared.Rent(PumpBufferBytes);
                try
                {
                    int n = await from.ReadAsync(buffer.AsMemory(0, PumpBufferBytes), token);
                    if (n == 0) return;
                    await _budget.TakeAsync(n, token);
                    Tap?.Invoke(buffer.AsMemory(0, n), towardHost);
                    using var stalled = new CancellationTokenSource(_protocol.MessageTimeout, _time);
                    using var writeLimit = CancellationTokenSource.CreateLinkedTokenSource(token, stalled.Token);
                    await to.WriteAsync(buffer.AsMemory(0, n), writeLimit.Token);
                    Interlocked.Add(ref _bytes, n);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Drops reservations not renewed within <see cref="KeepFor"/>; their waiting circuits fail at their timeout.</summary>
    private void Purge()
    {
        foreach (var lapsed in _reservations.Values.Where(r => r.Lapsed(Now, KeepFor) && r.Circuits == 0).ToArray())
        {
            _reservations.Remove(lapsed.Peer);
            LogLapsed(_logger, lapsed.Peer.ToString());
        }
    }

    /// <inheritdoc />
    public void Dispose() => _budget.Dispose();

    [LoggerMessage(EventId = 230, Level = LogLevel.Information, Message = "Relaying for {PeerId}")]
    private static partial void LogReserved(ILogger logger, string peerId);

    [LoggerMessage(EventId = 231, Level = LogLevel.Information, Message = "Reservation of {PeerId} lapsed")]
    private static partial void LogLapsed(ILogger logger, string peerId);

    [LoggerMessage(EventId = 232, Level = LogLevel.Debug, Message = "Relay refused: {Reason}")]
    private static partial void LogRefused(ILogger logger, string reason);

    private static ValueTask<PeerResponse> Refuse(StatusCode status, string message) => ValueTask.FromResult(PeerResponse.Error(status, message));

    private sealed class Reservation(PeerId peer, string? network, int maxCircuits)
    {
        private DateTimeOffset _lastSeen;
        private int _listening;

        public PeerId Peer { get; } = peer;

        public string? Network { get; } = network;

        public Channel<byte[]> Pending { get; } = Channel.CreateBounded<byte[]>(maxCircuits);

        public int Circuits { get; set; }

        public void Seen(DateTimeOffset now) => _lastSeen = now;

        public void Listening(DateTimeOffset now, int change)
        {
            _listening += change;
            _lastSeen = now;
        }

        public bool Lapsed(DateTimeOffset now, TimeSpan keep) => _listening == 0 && now - _lastSeen > keep;
    }

    private sealed class Circuit
    {
        public TaskCompletionSource<Stream> Host { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
