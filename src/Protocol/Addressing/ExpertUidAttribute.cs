using MoEMesh.Settings;

namespace MoEMesh.Protocol.Addressing;

/// <summary>A setting that is an expert uid (ffn.3.14).</summary>
public sealed class ExpertUidAttribute : SettingRuleAttribute
{
    /// <inheritdoc />
    protected override string? Problem(object value) => ExpertUid.TryParse((string)value, out _, out var error) ? null : error.TrimEnd('.');
}
