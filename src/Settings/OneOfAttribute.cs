namespace MoEMesh.Settings;

/// <summary>A choice among fixed names (exact, as a user types them).</summary>
/// <param name="names">The names allowed.</param>
public sealed class OneOfAttribute(params string[] names) : SettingRuleAttribute
{
    /// <summary>The names allowed.</summary>
    public IReadOnlyList<string> Names { get; } = names;

    /// <inheritdoc />
    protected override string? Problem(object value)
    {
        if (Names.Contains((string)value, StringComparer.Ordinal)) return null;
        return $"must be {string.Join(", ", Names.SkipLast(1))} or {Names[^1]}; got '{value}'";
    }
}
