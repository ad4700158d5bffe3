namespace MoEMesh.Settings;

/// <summary>A real-valued rate or scale (a learning rate, a norm): positive and finite.</summary>
public sealed class PositiveAttribute : SettingRuleAttribute
{
    /// <inheritdoc />
    protected override string? Problem(object value)
    {
        double number = Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture);
        return number > 0 && double.IsFinite(number) ? null : $"must be positive and finite; got {number}";
    }
}
