using System.Net;
using System.Net.Sockets;

namespace MoEMesh.Protocol.Addressing;

/// <summary>
/// The network an IP address belongs to, for limits that must hold against many identities: PeerIds cost
/// nothing to make, addresses do, and a host usually has one IPv4 address in a /24 or a whole IPv6 /48 to
/// itself. One rule for every such limit (connections, handshakes, stored records).
/// </summary>
public static class AddressNetwork
{
    /// <summary>"a.b.c.0/24" for IPv4 (also IPv4 mapped into IPv6), the /48 prefix for IPv6.</summary>
    public static string Of(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        var bytes = address.GetAddressBytes();
        if (address.AddressFamily == AddressFamily.InterNetwork)
            return $"{bytes[0]}.{bytes[1]}.{bytes[2]}.0/24";
        Array.Clear(bytes, 6, bytes.Length - 6);
        return $"{new IPAddress(bytes)}/48";
    }
}
