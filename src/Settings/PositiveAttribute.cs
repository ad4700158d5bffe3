namespace MoEMesh.Settings;

/// <summary>A real-valued rate or scale (a learning rate, a norm): positive (or 0 too, with <see cref="ZeroAllowed"/>) and finite.</summary>
public sealed class PositiveAttribute : SettingRuleAttribute
{
    /// <summary>Whether 0 is a value that works. Default false.</summary>
    public bool ZeroAllowed { get; init; }

    /// <inheritdoc />
    protected override string? Problem(object value)
    {
        double number = Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture);
        if (double.IsFinite(number) && (number > 0 || ZeroAllowed && number == 0)) return null;
        return ZeroAllowed ? $"must be 0 or more and finite; got {number}" : $"must be positive and finite; got {number}";
    }
}
