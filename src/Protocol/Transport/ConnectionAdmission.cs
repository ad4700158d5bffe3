using System.Net;

namespace MoEMesh.Protocol.Transport;

/// <summary>
/// Decides whether a server takes one more connection, before it spends a TLS handshake and a signature
/// on it: at most MaxConnections in all and MaxConnectionsPerAddress from one IP address, of which at most
/// MaxHandshakes (MaxHandshakesPerAddress from one address) may still be handshaking. A connection holds
/// its <see cref="Lease"/> until it ends. Thread-safe.
/// </summary>
internal sealed class ConnectionAdmission(PeerProtocolOptions options)
{
    private readonly object _gate = new();
    private readonly Dictionary<IPAddress, Counts> _perAddress = [];
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
        address = address is { IsIPv4MappedToIPv6: true } ? address.MapToIPv4() : address ?? IPAddress.None;
        lock (_gate)
        {
            _perAddress.TryGetValue(address, out var mine);
            refusal =
                _total.Connections >= options.MaxConnections ? $"this node has {_total.Connections} connections; limit MaxConnections = {options.MaxConnections}"
                : _total.Handshaking >= options.MaxHandshakes ? $"{_total.Handshaking} handshakes are in progress; limit MaxHandshakes = {options.MaxHandshakes}"
                : mine?.Connections >= options.MaxConnectionsPerAddress ? $"{address} has {mine.Connections} connections; limit MaxConnectionsPerAddress = {options.MaxConnectionsPerAddress}"
                : mine?.Handshaking >= options.MaxHandshakesPerAddress ? $"{address} has {mine.Handshaking} handshakes in progress; limit MaxHandshakesPerAddress = {options.MaxHandshakesPerAddress}"
                : null;
            if (refusal is not null) return null;
            if (mine is null) _perAddress[address] = mine = new Counts();
            mine.Connections++;
            mine.Handshaking++;
            _total.Connections++;
            _total.Handshaking++;
            return new Lease(this, address);
        }
    }

    private void Established(IPAddress address)
    {
        lock (_gate)
        {
            _perAddress[address].Handshaking--;
            _total.Handshaking--;
        }
    }

    private void Release(IPAddress address, bool handshaking)
    {
        lock (_gate)
        {
            var mine = _perAddress[address];
            mine.Connections--;
            _total.Connections--;
            if (handshaking)
            {
                mine.Handshaking--;
                _total.Handshaking--;
            }
            if (mine.Connections == 0) _perAddress.Remove(address);
        }
    }

    private sealed class Counts
    {
        public int Connections;
        public int Handshaking;
    }

    /// <summary>One admitted connection: handshaking until <see cref="Established"/>, counted until disposed.</summary>
    internal sealed class Lease(ConnectionAdmission owner, IPAddress address) : IDisposable
    {
        private bool _handshaking = true, _disposed;

        /// <summary>The handshake succeeded: the connection no longer holds a handshake slot.</summary>
        public void Established()
        {
            if (!_handshaking || _disposed) return;
            _handshaking = false;
            owner.Established(address);
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            owner.Release(address, _handshaking);
        }
    }
}
