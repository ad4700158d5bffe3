namespace MoEMesh.Settings;

/// <summary>A file or folder name: not empty.</summary>
public sealed class PathAttribute : SettingRuleAttribute
{
    /// <inheritdoc />
    protected override string? Problem(object value) => string.IsNullOrWhiteSpace(value as string) ? "must name a file or folder" : null;
}
