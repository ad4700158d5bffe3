namespace MoEMesh.Routing.Models;

/// <summary>How <see cref="ModelTrainer"/> trains.</summary>
public sealed class TrainingOptions
{
    /// <summary>Passes over the training data, when <see cref="Steps"/> is not set. Default 3.</summary>
    public int Epochs { get; set; } = 3;

    /// <summary>Optimizer steps to take instead of whole epochs; null to use <see cref="Epochs"/>.</summary>
    public int? Steps { get; set; }

    /// <summary>Texts per step. Default 32.</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>Adam's learning rate for the trunk, gates and head (experts use their hosts' own). Default 0.01.</summary>
    public float LearningRate { get; set; } = 0.01f;

    /// <summary>Seed of the batch order. Default 1.</summary>
    public ulong Seed { get; set; } = 1;

    /// <summary>Steps in a row that may fail (no expert and no fallback answered) before training gives up. Default 20.</summary>
    public int MaxFailedStepsInARow { get; set; } = 20;

    /// <summary>Steps in an epoch of <paramref name="examples"/> texts.</summary>
    public int StepsPerEpoch(int examples) => (examples + BatchSize - 1) / BatchSize;

    /// <summary>Steps a run over <paramref name="examples"/> texts takes: <see cref="Steps"/>, else whole epochs.</summary>
    public long TotalSteps(int examples) => Steps ?? (long)Epochs * StepsPerEpoch(examples);

    /// <summary>Throws naming the setting when a value cannot work.</summary>
    public void Validate()
    {
        if (Steps is null && Epochs is < 1 or > 10_000) throw new ArgumentException($"Epochs must be between 1 and 10000; got {Epochs}.");
        if (Steps is < 1) throw new ArgumentException($"Steps must be at least 1; got {Steps}.");
        if (BatchSize is < 1 or > 4096) throw new ArgumentException($"The batch size must be between 1 and 4096; got {BatchSize}.");
        if (!(LearningRate > 0) || !float.IsFinite(LearningRate)) throw new ArgumentException($"The learning rate must be positive; got {LearningRate}.");
        if (MaxFailedStepsInARow < 1) throw new ArgumentException($"MaxFailedStepsInARow must be at least 1; got {MaxFailedStepsInARow}.");
    }
}
