using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Protocol.Rpc;

/// <summary>Whom to call: an address, and the PeerId expected there (checked in the handshake) when known.</summary>
public readonly record struct PeerEndpoint(PeerAddress Address, PeerId? PeerId = null)
{
    /// <summary>Parses <c>host:port</c> or <c>PEERID@host:port</c>.</summary>
    /// <exception cref="FormatException">Either part is malformed.</exception>
    public static PeerEndpoint Parse(string text)
    {
        int at = text.IndexOf('@');
        return at < 0
            ? new PeerEndpoint(PeerAddress.Parse(text))
            : new PeerEndpoint(PeerAddress.Parse(text[(at + 1)..]), Identity.PeerId.Parse(text[..at]));
    }

    /// <summary>Parses <c>host:port</c> or <c>PEERID@host:port</c>; false when either part is malformed.</summary>
    public static bool TryParse(string? text, out PeerEndpoint endpoint)
    {
        endpoint = default;
        if (text is null) return false;
        try
        {
            endpoint = Parse(text);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <inheritdoc />
    public override string ToString() => PeerId is { } id ? $"{id}@{Address}" : Address.ToString();
}
