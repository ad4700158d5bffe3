using MoEMesh.Settings;

namespace MoEMesh.Protocol.Addressing;

/// <summary>A setting that is a peer address, host:port; with <see cref="Listen"/>, port 0 (any free port) too.</summary>
public sealed class PeerAddressAttribute : SettingRuleAttribute
{
    /// <summary>An address to listen on, where port 0 takes any free port. Default false: a real port.</summary>
    public bool Listen { get; init; }

    /// <inheritdoc />
    protected override string? Problem(object value)
    {
        var text = (string)value;
        if (Listen ? PeerAddress.TryParseListen(text, out _) : PeerAddress.TryParse(text, out _)) return null;
        return !Listen && PeerAddress.TryParseListen(text, out _) ? $"needs a real port, not 0; got '{text}'" : $"'{text}' is not host:port (for example 0.0.0.0:7700)";
    }
}
