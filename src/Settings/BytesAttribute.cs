namespace MoEMesh.Settings;

/// <summary>A size in bytes: at least <see cref="Min"/>.</summary>
public sealed class BytesAttribute : SettingRuleAttribute
{
    /// <summary>The smallest size that works. Default 1.</summary>
    public long Min { get; init; } = 1;

    /// <inheritdoc />
    protected override string? Problem(object value)
    {
        long bytes = Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture);
        return bytes >= Min ? null : $"must be at least {Min} bytes; got {bytes}";
    }
}
