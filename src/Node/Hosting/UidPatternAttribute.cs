using MoEMesh.Settings;

namespace MoEMesh.Node.Hosting;

/// <summary>A setting that is a uid pattern (ffn.[0:4].[0:4]).</summary>
public sealed class UidPatternAttribute : SettingRuleAttribute
{
    /// <inheritdoc />
    protected override string? Problem(object value) => ParseProblem(() => UidPattern.Parse((string)value));
}
