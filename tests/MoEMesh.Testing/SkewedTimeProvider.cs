namespace MoEMesh.Testing;

/// <summary>
/// The system's clock set <paramref name="skew"/> off: a machine whose wall clock is wrong by that much.
/// Timestamps and timers run at the system's pace (a wrong clock, not a slow one).
/// </summary>
public sealed class SkewedTimeProvider(TimeSpan skew) : TimeProvider
{
    /// <summary>How far this clock is from the system's.</summary>
    public TimeSpan Skew { get; } = skew;

    /// <inheritdoc />
    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + Skew;
}
