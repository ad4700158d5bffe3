namespace MoEMesh.Settings;

/// <summary>
/// A time limit, period or wait: finite and at most <see cref="Longest"/>, positive unless
/// <see cref="ZeroAllowed"/> (a wait that may be switched off).
/// </summary>
public sealed class DurationAttribute : SettingRuleAttribute
{
    /// <summary>
    /// The longest duration any setting takes: a day. Timers take up to about 49 days, and nothing in the
    /// mesh (a deadline, a record's lifetime, a checkpoint period) has a reason to wait longer than a day.
    /// </summary>
    public static readonly TimeSpan Longest = TimeSpan.FromDays(1);

    /// <summary>Zero is allowed (it switches the wait off). Default false.</summary>
    public bool ZeroAllowed { get; init; }

    /// <inheritdoc />
    protected override string? Problem(object value)
    {
        var span = (TimeSpan)value;
        bool tooShort = ZeroAllowed ? span < TimeSpan.Zero : span <= TimeSpan.Zero;
        if (!tooShort && span <= Longest) return null;
        return $"must be {(ZeroAllowed ? "between 0 and" : "positive and at most")} a day ({Longest}); got {span}";
    }
}
