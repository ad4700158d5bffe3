using MoEMesh.Settings;

namespace MoEMesh.Protocol.Rpc;

/// <summary>A setting that is a peer to dial, host:port or PEERID@host:port.</summary>
public sealed class PeerEndpointAttribute : SettingRuleAttribute
{
    /// <inheritdoc />
    protected override string? Problem(object value) => ParseProblem(() => PeerEndpoint.Parse((string)value));
}
