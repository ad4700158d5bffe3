using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Settings;

namespace MoEMesh.Protocol.Transport;

/// <summary>
/// One connection per peer address, made on demand and shared by all calls. Concurrent callers share one
/// connect attempt; after a failure the address backs off (<see cref="PeerProtocolOptions.ReconnectBackoff"/>
/// doubling to <see cref="PeerProtocolOptions.ReconnectBackoffMax"/>) and calls fail fast until the next
/// attempt is due. A maintenance loop pings idle connections, closes those that do not answer, and closes
/// connections unused for <see cref="PeerProtocolOptions.IdleTimeout"/>.
/// </summary>
public sealed partial class PeerConnectionPool : IAsyncDisposable
{
    private readonly Dictionary<PeerEndpoint, Entry> _entries = [];
    private readonly PeerIdentity _identity;
    private readonly PeerProtocolOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _maintenance;

    /// <summary>Creates the pool and starts its maintenance loop.</summary>
    public PeerConnectionPool(PeerIdentity identity, PeerProtocolOptions options, TimeProvider time, ILogger<PeerConnectionPool>? logger = null)
    {
        SettingsValidation.ThrowIfInvalid(options);
        _identity = identity;
        _options = options;
        _time = time;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _maintenance = Task.Run(() => MaintainAsync(_stopping.Token));
    }

    /// <summary>Open connections.</summary>
    public int OpenConnections
    {
        get
        {
            lock (_entries) return _entries.Values.Count(e => e.Connection is { IsOpen: true });
        }
    }

    /// <summary>
    /// An open connection to <paramref name="endpoint"/>, connecting if needed.
    /// </summary>
    /// <exception cref="PeerUnavailableException">The peer cannot be reached now, is backed off, or is not the expected PeerId.</exception>
    public async Task<PeerConnection> GetAsync(PeerEndpoint endpoint, CancellationToken cancellationToken)
    {
        Task<PeerConnection> connecting;
        var key = KeyOf(endpoint);
        lock (_entries)
        {
            if (!_entries.TryGetValue(key, out var entry)) _entries[key] = entry = new Entry();
            if (entry.Connection is { IsOpen: true } open) return Expect(open, endpoint);
            if (entry.Connecting is null)
            {
                var wait = _time.GetElapsedTime(_time.GetTimestamp(), entry.RetryAt);
                if (entry.Failures > 0 && wait > TimeSpan.Zero)
                    throw new PeerUnavailableException($"Peer {endpoint} is backed off for {wait.TotalSeconds:F1} s more after {entry.Failures} failed attempts; last: {entry.LastError}");
                entry.Connecting = ConnectAsync(endpoint, entry);
            }
            connecting = entry.Connecting;
        }
        return Expect(await connecting.WaitAsync(cancellationToken), endpoint);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await _maintenance;
        List<PeerConnection> connections;
        lock (_entries)
        {
            connections = _entries.Values.Select(e => e.Connection).OfType<PeerConnection>().ToList();
            _entries.Clear();
        }
        foreach (var c in connections) await c.DisposeAsync();
        _stopping.Dispose();
    }

    /// <summary>
    /// One connection per address; through a relay, one per peer behind it (many peers share a relay's address).
    /// </summary>
    private static PeerEndpoint KeyOf(PeerEndpoint endpoint) => endpoint.Address.Relayed ? endpoint : new PeerEndpoint(endpoint.Address);

    private static PeerConnection Expect(PeerConnection connection, PeerEndpoint endpoint) =>
        endpoint.PeerId is { } want && want != connection.RemotePeer
            ? throw new PeerUnavailableException($"Peer at {endpoint.Address} is {connection.RemotePeer}, not the expected {want}.")
            : connection;

    private async Task<PeerConnection> ConnectAsync(PeerEndpoint endpoint, Entry entry)
    {
        await Task.Yield();
        try
        {
            var connection = await PeerConnection.ConnectAsync(endpoint, _identity, _options, _time, _stopping.Token);
            PeerConnection? previous;
            lock (_entries)
            {
                previous = entry.Connection;
                entry.Connection = connection;
                entry.Failures = 0;
            }
            if (previous is not null) await previous.DisposeAsync();
            LogConnected(_logger, endpoint.ToString(), connection.RemotePeer.ToString());
            return connection;
        }
        catch (PeerUnavailableException e)
        {
            lock (_entries)
            {
                entry.Failures++;
                entry.LastError = e.Message;
                var backoff = TimeSpan.FromTicks(Math.Min(_options.ReconnectBackoffMax.Ticks,
                    _options.ReconnectBackoff.Ticks * (1L << Math.Min(entry.Failures - 1, 20))));
                entry.RetryAt = _time.GetTimestamp() + (long)(backoff.TotalSeconds * _time.TimestampFrequency);
            }
            LogConnectFailed(_logger, endpoint.ToString(), e.Message);
            throw;
        }
        finally
        {
            lock (_entries) entry.Connecting = null;
        }
    }

    private async Task MaintainAsync(CancellationToken stopping)
    {
        var period = TimeSpan.FromTicks(Math.Min(_options.KeepAliveInterval.Ticks, _options.IdleTimeout.Ticks) / 2);
        try
        {
            while (true)
            {
                await Task.Delay(period, _time, stopping);
                List<(PeerEndpoint Key, PeerConnection Connection)> open;
                lock (_entries)
                    open = _entries.Where(e => e.Value.Connection is not null).Select(e => (e.Key, e.Value.Connection!)).ToList();
                foreach (var (key, connection) in open)
                    await MaintainOneAsync(key, connection, stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    private async Task MaintainOneAsync(PeerEndpoint key, PeerConnection connection, CancellationToken stopping)
    {
        string? closeReason = null;
        if (!connection.IsOpen) closeReason = connection.CloseReason;
        else if (connection.InFlight == 0 && connection.IdleFor >= _options.IdleTimeout) closeReason = "idle";
        else if (connection.InFlight == 0 && connection.IdleFor >= _options.KeepAliveInterval
                 && !await connection.PingAsync(_options.KeepAliveTimeout, stopping))
            closeReason = $"no pong within {_options.KeepAliveTimeout.TotalSeconds:F0} s";
        if (closeReason is null) return;
        lock (_entries)
        {
            if (_entries.TryGetValue(key, out var entry) && ReferenceEquals(entry.Connection, connection)) entry.Connection = null;
        }
        LogClosed(_logger, key.ToString(), closeReason ?? "closed");
        await connection.DisposeAsync();
    }

    [LoggerMessage(EventId = 300, Level = LogLevel.Debug, Message = "Connected to {Endpoint} ({PeerId})")]
    private static partial void LogConnected(ILogger logger, string endpoint, string peerId);

    [LoggerMessage(EventId = 301, Level = LogLevel.Information, Message = "Cannot connect to {Endpoint}: {Reason}")]
    private static partial void LogConnectFailed(ILogger logger, string endpoint, string reason);

    [LoggerMessage(EventId = 302, Level = LogLevel.Debug, Message = "Closed pooled connection to {Address}: {Reason}")]
    private static partial void LogClosed(ILogger logger, string address, string reason);

    private sealed class Entry
    {
        public PeerConnection? Connection;
        public Task<PeerConnection>? Connecting;
        public int Failures;
        public long RetryAt;
        public string LastError = "";
    }
}
