using MoEMesh.Settings;

namespace MoEMesh.Routing;

/// <summary>A setting that names how tensors travel: none, fp16, bf16 or 8bit (see <see cref="RoutingOptions.ParseCompression"/>).</summary>
public sealed class CompressionNameAttribute : SettingRuleAttribute
{
    /// <inheritdoc />
    protected override string? Problem(object value) =>
        RoutingOptions.TryParseCompression((string)value) is null ? $"must be one of {string.Join(", ", RoutingOptions.CompressionNames)}; got '{value}'" : null;
}
