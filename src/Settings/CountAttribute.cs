namespace MoEMesh.Settings;

/// <summary>A count (of rows, peers, steps, ...): a whole number from <see cref="Min"/> to <see cref="Max"/>.</summary>
public sealed class CountAttribute : SettingRuleAttribute
{
    /// <summary>The smallest count that works. Default 1.</summary>
    public long Min { get; init; } = 1;

    /// <summary>The largest count that works. Default no limit.</summary>
    public long Max { get; init; } = long.MaxValue;

    /// <inheritdoc />
    protected override string? Problem(object value)
    {
        long count = Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture);
        if (count >= Min && count <= Max) return null;
        return Max == long.MaxValue ? $"must be at least {Min}; got {count}" : $"must be between {Min} and {Max}; got {count}";
    }
}
