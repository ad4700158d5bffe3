namespace MoEMesh.Tensors.Optimizers;

/// <summary>How the learning rate falls after warm-up.</summary>
public enum DecayShape
{
    /// <summary>Stays at the peak.</summary>
    Constant,

    /// <summary>Falls linearly to the minimum at the last step.</summary>
    Linear,

    /// <summary>Follows half a cosine to the minimum at the last step.</summary>
    Cosine,
}

/// <summary>
/// Linear warm-up from 0 to <see cref="PeakRate"/> over <see cref="WarmupSteps"/>, then decay to
/// <see cref="MinRate"/> at <see cref="TotalSteps"/>, then flat. A pure function of the step number, so
/// a restored optimizer resumes on the same curve.
/// </summary>
public sealed record LearningRateSchedule(float PeakRate, long WarmupSteps = 0, long TotalSteps = 0,
    DecayShape Decay = DecayShape.Constant, float MinRate = 0f)
{
    /// <summary>A constant rate.</summary>
    public static LearningRateSchedule Constant(float rate) => new(rate);

    /// <summary>The rate for step <paramref name="step"/> (0-based).</summary>
    public float At(long step)
    {
        if (step < WarmupSteps) return PeakRate * (step + 1) / WarmupSteps;
        if (Decay == DecayShape.Constant || TotalSteps <= WarmupSteps) return PeakRate;
        double progress = Math.Min(1.0, (double)(step - WarmupSteps) / (TotalSteps - WarmupSteps));
        double factor = Decay == DecayShape.Linear ? 1.0 - progress : 0.5 * (1.0 + Math.Cos(Math.PI * progress));
        return (float)(MinRate + (PeakRate - MinRate) * factor);
    }

    /// <summary>Throws with the offending field named when the schedule cannot work.</summary>
    public void Validate()
    {
        if (!(PeakRate > 0f) || float.IsInfinity(PeakRate)) throw new ArgumentException($"Learning rate must be positive and finite; got {PeakRate}.");
        if (WarmupSteps < 0) throw new ArgumentException($"Warm-up steps must not be negative; got {WarmupSteps}.");
        if (Decay != DecayShape.Constant && TotalSteps <= WarmupSteps)
            throw new ArgumentException($"A {Decay} decay needs TotalSteps ({TotalSteps}) beyond WarmupSteps ({WarmupSteps}).");
        if (MinRate < 0f || MinRate > PeakRate) throw new ArgumentException($"Minimum rate {MinRate} must be in [0, {PeakRate}].");
    }
}
