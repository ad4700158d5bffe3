namespace MoEMesh.Settings;

/// <summary>A share of a whole: above 0 (or 0 too, with <see cref="ZeroAllowed"/>) and at most 1.</summary>
public sealed class FractionAttribute : SettingRuleAttribute
{
    /// <summary>Whether 0 (none) is a share that works. Default false.</summary>
    public bool ZeroAllowed { get; init; }

    /// <inheritdoc />
    protected override string? Problem(object value)
    {
        double share = Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture);
        if (share > 0 && share <= 1 || ZeroAllowed && share == 0) return null;
        return ZeroAllowed ? $"must be from 0 to 1; got {share}" : $"must be above 0 and at most 1; got {share}";
    }
}
