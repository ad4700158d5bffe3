using System.Diagnostics.Metrics;

namespace MoEMesh.Protocol.Transport;

/// <summary>
/// Bytes of peer-protocol frames this process moved once connections were established (meter
/// "MoEMesh.Protocol"; the handshake's few hundred bytes per connection are not counted), by direction (sent,
/// received) and side (client: calls this process made; server: calls it answered). One meter per process: every connection of every transport in it adds to the same counters.
/// </summary>
internal static class TransportMetrics
{
    /// <summary>Name of the meter.</summary>
    public const string MeterName = "MoEMesh.Protocol";

    private static readonly Meter Meter = new(MeterName);

    private static readonly Counter<long> Bytes = Meter.CreateCounter<long>("moemesh.peer.bytes", "By",
        "Bytes of peer-protocol frames, by direction (sent, received) and side (client: calls this process made; server: calls it answered)");

    private static readonly KeyValuePair<string, object?>[][] Tags =
    [
        [new("direction", "sent"), new("side", "client")],
        [new("direction", "received"), new("side", "client")],
        [new("direction", "sent"), new("side", "server")],
        [new("direction", "received"), new("side", "server")],
    ];

    /// <summary>Counts bytes sent (<paramref name="sent"/>) or received on a connection of the given side.</summary>
    public static void Add(long bytes, bool sent, bool server)
    {
        if (bytes > 0) Bytes.Add(bytes, Tags[(server ? 2 : 0) + (sent ? 0 : 1)]);
    }
}
