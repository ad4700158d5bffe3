using System.Net;

namespace MoEMesh.Protocol.Addressing;

/// <summary>
/// Where a peer listens: host and port, written <c>host:port</c> or <c>[v6]:port</c>. A relayed address
/// (<c>host:port/relay</c>) is a relay's: the peer is reached through the relay at host:port, which
/// splices the caller's connection to one the peer keeps open to it (see src/Protocol/README.md, Relays).
/// </summary>
public readonly record struct PeerAddress(string Host, int Port, bool Relayed = false)
{
    /// <summary>What a relayed address ends with.</summary>
    public const string RelaySuffix = "/relay";

    /// <summary>Longest host name (DNS allows 253 characters).</summary>
    public const int MaxHostLength = 253;

    /// <summary>Parses <c>host:port</c>.</summary>
    /// <exception cref="FormatException">The text is not host:port with a port in 1..65535.</exception>
    public static PeerAddress Parse(string text)
    {
        if (TryParse(text, out var address)) return address;
        throw new FormatException($"'{text}' is not a peer address; expected host:port (for example 127.0.0.1:7000 or [::1]:7000).");
    }

    /// <summary>Parses <c>host:port</c>; false when malformed.</summary>
    public static bool TryParse(string? text, out PeerAddress address)
    {
        address = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        bool relayed = text.EndsWith(RelaySuffix, StringComparison.Ordinal);
        if (relayed) text = text[..^RelaySuffix.Length];
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.None, null, out int port) || port is < 1 or > 65535)
            return false;
        var host = text[..colon];
        if (host.StartsWith('[') && host.EndsWith(']')) host = host[1..^1];
        if (host.Length is 0 or > MaxHostLength || host.Any(char.IsWhiteSpace)) return false;
        address = new PeerAddress(host, port, relayed);
        return true;
    }

    /// <summary>Parses <c>host:port</c> to listen on, where port 0 takes any free port; false when malformed or relayed.</summary>
    public static bool TryParseListen(string? text, out PeerAddress address)
    {
        address = default;
        if (text is not null && text.EndsWith(RelaySuffix, StringComparison.Ordinal)) return false;
        if (text is not null && text.EndsWith(":0", StringComparison.Ordinal) && TryParse(text[..^2] + ":1", out var any))
        {
            address = any with { Port = 0 };
            return true;
        }
        return TryParse(text, out address);
    }

    /// <summary>
    /// Whether a peer could be reached here: false for the unspecified addresses (0.0.0.0, ::), broadcast
    /// and multicast, which a peer may listen on or be told about but never be dialled at.
    /// </summary>
    public bool IsDialable =>
        !IPAddress.TryParse(Host, out var ip) ||
        !(ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any) || ip.Equals(IPAddress.Broadcast) || ip.IsIPv6Multicast || (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && ip.GetAddressBytes()[0] is >= 224 and <= 239));

    /// <summary>The relay's own address, for a relayed one.</summary>
    public PeerAddress Direct => this with { Relayed = false };

    /// <summary>The relayed address of a peer reached through the relay listening here.</summary>
    public PeerAddress ThroughRelay => this with { Relayed = true };

    /// <summary>An address from an IP endpoint.</summary>
    public static PeerAddress From(IPEndPoint endPoint) => new(endPoint.Address.ToString(), endPoint.Port);

    /// <inheritdoc />
    public override string ToString() => (Host.Contains(':') ? $"[{Host}]:{Port}" : $"{Host}:{Port}") + (Relayed ? RelaySuffix : "");
}
