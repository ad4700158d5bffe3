namespace MoEMesh.Settings;

/// <summary>
/// A wait added on purpose so that calls can share a batch (a batching wait, a query linger): between 0
/// (off) and <see cref="Longest"/>, since every call it holds pays it against a deadline of a few seconds.
/// </summary>
public sealed class LingerAttribute : SettingRuleAttribute
{
    /// <summary>The longest linger: a second, half the default ForwardTimeout.</summary>
    public static readonly TimeSpan Longest = TimeSpan.FromSeconds(1);

    /// <inheritdoc />
    protected override string? Problem(object value)
    {
        var span = (TimeSpan)value;
        return span >= TimeSpan.Zero && span <= Longest ? null : $"must be between 0 and {Longest} (every call it holds pays it); got {span}";
    }
}
