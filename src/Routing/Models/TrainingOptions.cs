using MoEMesh.Settings;

namespace MoEMesh.Routing.Models;

/// <summary>How <see cref="ModelTrainer"/> trains.</summary>
public sealed class TrainingOptions
{
    /// <summary>Passes over the training data, when <see cref="Steps"/> is not set. Default 3.</summary>
    [Count(Max = 10_000)]
    public int Epochs { get; set; } = 3;

    /// <summary>Optimizer steps to take instead of whole epochs; null to use <see cref="Epochs"/>.</summary>
    [Count]
    public int? Steps { get; set; }

    /// <summary>Texts per step. Default 32.</summary>
    [Count(Max = 4096)]
    public int BatchSize { get; set; } = 32;

    /// <summary>Adam's learning rate for the trunk, gates and head (experts use their hosts' own). Default 0.01.</summary>
    [Positive]
    public float LearningRate { get; set; } = 0.01f;

    /// <summary>Seed of the batch order. Default 1.</summary>
    public ulong Seed { get; set; } = 1;

    /// <summary>Steps in a row that may fail (no expert and no fallback answered) before training gives up. Default 20.</summary>
    [Count]
    public int MaxFailedStepsInARow { get; set; } = 20;

    /// <summary>Steps in an epoch of <paramref name="examples"/> texts.</summary>
    public int StepsPerEpoch(int examples) => (examples + BatchSize - 1) / BatchSize;

    /// <summary>Steps a run over <paramref name="examples"/> texts takes: <see cref="Steps"/>, else whole epochs.</summary>
    public long TotalSteps(int examples) => Steps ?? (long)Epochs * StepsPerEpoch(examples);

    /// <summary>
    /// The batches of a run over <paramref name="examples"/> texts, step by step: indices into them, in an
    /// order shuffled afresh (seeded by <see cref="Seed"/>) at the start of every epoch.
    /// </summary>
    public IEnumerable<int[]> Batches(int examples)
    {
        int perEpoch = StepsPerEpoch(examples);
        long total = TotalSteps(examples);
        var random = new Tensors.SeededRandom(Seed);
        var order = Enumerable.Range(0, examples).ToArray();
        for (long step = 0; step < total; step++)
        {
            int slot = (int)(step % perEpoch);
            if (slot == 0) random.Shuffle(order.AsSpan());
            yield return order.Skip(slot * BatchSize).Take(BatchSize).ToArray();
        }
    }
}
