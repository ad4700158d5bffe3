namespace MoEMesh.Settings;

/// <summary>A share of a whole: above 0 and at most 1.</summary>
public sealed class FractionAttribute : SettingRuleAttribute
{
    /// <inheritdoc />
    protected override string? Problem(object value)
    {
        double share = Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture);
        return share > 0 && share <= 1 ? null : $"must be above 0 and at most 1; got {share}";
    }
}
