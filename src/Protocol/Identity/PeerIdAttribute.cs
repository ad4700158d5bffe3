using MoEMesh.Settings;

namespace MoEMesh.Protocol.Identity;

/// <summary>A setting that is a PeerId.</summary>
public sealed class PeerIdAttribute : SettingRuleAttribute
{
    /// <inheritdoc />
    protected override string? Problem(object value) => PeerId.TryParse((string)value, out _) ? null : $"'{value}' is not a PeerId";
}
