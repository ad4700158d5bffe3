namespace MoEMesh.Settings;

/// <summary>A share of a whole: above 0 and at most 1; an empty optional share is fine.</summary>
public sealed class FractionAttribute : SettingRuleAttribute
{
    /// <inheritdoc />
    public override string? Problem(object? value)
    {
        if (value is null) return null;
        double share = Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture);
        return share > 0 && share <= 1 ? null : $"must be above 0 and at most 1; got {share}";
    }
}
