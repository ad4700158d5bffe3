using MoEMesh.Tensors;
using MoEMesh.Tensors.Optimizers;

namespace MoEMesh.Experts;

/// <summary>Which optimizer an expert backend steps, and how.</summary>
public sealed record OptimizerOptions
{
    /// <summary>"sgd", "adam" or "adamw".</summary>
    public string Name { get; init; } = "adam";

    /// <summary>Peak learning rate.</summary>
    public float LearningRate { get; init; } = 1e-3f;

    /// <summary>SGD momentum.</summary>
    public float Momentum { get; init; }

    /// <summary>Weight decay (L2 for sgd and adam, decoupled for adamw).</summary>
    public float WeightDecay { get; init; }

    /// <summary>Linear warm-up steps.</summary>
    public long WarmupSteps { get; init; }

    /// <summary>Steps over which the rate decays; 0 with <see cref="DecayShape.Constant"/>.</summary>
    public long TotalSteps { get; init; }

    /// <summary>Shape of the decay after warm-up.</summary>
    public DecayShape Decay { get; init; } = DecayShape.Constant;

    /// <summary>Clip gradients to this global norm before each step; null for no clipping.</summary>
    public float? MaxGradNorm { get; init; }

    /// <summary>Builds the optimizer over <paramref name="parameters"/>.</summary>
    /// <exception cref="ArgumentException">The name is unknown or a value out of range; the message names it.</exception>
    public Optimizer Create(IEnumerable<Parameter> parameters)
    {
        if (MaxGradNorm is { } norm && !(norm > 0f))
            throw new ArgumentException($"MaxGradNorm must be positive; got {norm}.");
        var schedule = new LearningRateSchedule(LearningRate, WarmupSteps, TotalSteps, Decay);
        return Name switch
        {
            "sgd" => new Sgd(parameters, schedule, Momentum, WeightDecay),
            "adam" => new Adam(parameters, schedule, weightDecay: WeightDecay),
            "adamw" => new Adam(parameters, schedule, weightDecay: WeightDecay, decoupledWeightDecay: true),
            _ => throw new ArgumentException($"Unknown optimizer '{Name}'; use sgd, adam or adamw."),
        };
    }
}
