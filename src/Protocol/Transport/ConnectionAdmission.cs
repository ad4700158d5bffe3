using System.Net;
using MoEMesh.Protocol.Addressing;

namespace MoEMesh.Protocol.Transport;

/// <summary>
/// Decides whether a server takes one more connection, before it spends a TLS handshake and a signature
/// on it: at most MaxConnections in all and MaxConnectionsPerNetwork from one network
/// (<see cref="AddressNetwork"/>: an IPv4 /24, an IPv6 /48), of which at most MaxHandshakes
/// (MaxHandshakesPerNetwork from one network) may still be handshaking. A connection holds its
/// <see cref="Lease"/> until it ends. Thread-safe.
/// </summary>
internal sealed class ConnectionAdmission(PeerProtocolOptions options)
{
    private readonly object _gate = new();
    private readonly Dictionary<string, Counts> _perNetwork = new(StringComparer.Ordinal);
    private readonly Counts _total = new();

    /// <summary>Connections admitted and not yet ended.</summary>
    public int Connections
    {
        get
        {
            lock (_gate) return _total.Connections;
        }
    }

    /// <summary>Admitted connections still handshaking.</summary>
    public int Handshaking
    {
        get
        {
            lock (_gate) return _total.Handshaking;
        }
    }

    /// <summary>A lease on a connection slot, or null with the reason when the server is at a limit.</summary>
    public Lease? TryAdmit(IPAddress? address, out string? refusal)
    {
        string network = address is null ? "unknown" : AddressNetwork.Of(address);
        lock (_gate)
        {
            _perNetwork.TryGetValue(network, out var mine);
            refusal =
                _total.Connections >= options.MaxConnections ? $"this node has {_total.Connections} connections; limit MaxConnections = {options.MaxConnections}"
                : _total.Handshaking >= options.MaxHandshakes ? $"{_total.Handshaking} handshakes are in progress; limit MaxHandshakes = {options.MaxHandshakes}"
                : mine?.Connections >= options.MaxConnectionsPerNetwork ? $"network {network} has {mine.Connections} connections; limit MaxConnectionsPerNetwork = {options.MaxConnectionsPerNetwork}"
                : mine?.Handshaking >= options.MaxHandshakesPerNetwork ? $"network {network} has {mine.Handshaking} handshakes in progress; limit MaxHandshakesPerNetwork = {options.MaxHandshakesPerNetwork}"
                : null;
            if (refusal is not null) return null;
            if (mine is null) _perNetwork[network] = mine = new Counts();
            mine.Connections++;
            mine.Handshaking++;
            _total.Connections++;
            _total.Handshaking++;
            return new Lease(this, network);
        }
    }

    private void Established(string network)
    {
        lock (_gate)
        {
            _perNetwork[network].Handshaking--;
            _total.Handshaking--;
        }
    }

    private void Release(string network, bool handshaking)
    {
        lock (_gate)
        {
            var mine = _perNetwork[network];
            mine.Connections--;
            _total.Connections--;
            if (handshaking)
            {
                mine.Handshaking--;
                _total.Handshaking--;
            }
            if (mine.Connections == 0) _perNetwork.Remove(network);
        }
    }

    private sealed class Counts
    {
        public int Connections;
        public int Handshaking;
    }

    /// <summary>One admitted connection: handshaking until <see cref="Established"/>, counted until disposed.</summary>
    internal sealed class Lease(ConnectionAdmission owner, string network) : IDisposable
    {
        private bool _handshaking = true, _disposed;

        /// <summary>The handshake succeeded: the connection no longer holds a handshake slot.</summary>
        public void Established()
        {
            if (!_handshaking || _disposed) return;
            _handshaking = false;
            owner.Established(network);
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            owner.Release(network, _handshaking);
        }
    }
}
