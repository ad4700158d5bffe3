using System.ComponentModel.DataAnnotations;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Settings;

namespace MoEMesh.Node.Hosting;

/// <summary>One group of experts to host: a type, which uids, sizes, and how they train.</summary>
public sealed class ExpertHostingOptions : IValidatableObject
{
    /// <summary>Registered expert type: ffn, mlp or identity. Default ffn.</summary>
    public string Type { get; set; } = "ffn";

    /// <summary>An exact uid to host (ffn.3.14); or leave empty and set <see cref="Pattern"/>.</summary>
    [ExpertUid]
    public string? Uid { get; set; }

    /// <summary>A uid pattern (ffn.[0:4].[0:4]) from which <see cref="Count"/> free uids are taken.</summary>
    [UidPattern]
    public string? Pattern { get; set; }

    /// <summary>How many uids to take from <see cref="Pattern"/>. Default 1.</summary>
    [Count]
    public int Count { get; set; } = 1;

    /// <summary>Width of the expert's input and output (d). Default 1024.</summary>
    [Count]
    public int HiddenDim { get; set; } = 1024;

    /// <summary>Inner width; empty for 4 × d.</summary>
    [Count]
    public int? InnerDim { get; set; }

    /// <summary>sgd, adam or adamw. Default adam.</summary>
    [OneOf("sgd", "adam", "adamw")]
    public string Optimizer { get; set; } = "adam";

    /// <summary>Learning rate. Default 0.001.</summary>
    [Positive]
    public float LearningRate { get; set; } = 1e-3f;

    /// <summary>
    /// Each training step's gradients are scaled down to this global L2 norm when larger, so no batch of
    /// gradients (a careless or hostile trainer's) can move the weights far in one step. Default 1.
    /// </summary>
    [Positive]
    public float MaxGradNorm { get; set; } = 1f;

    /// <inheritdoc />
    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext context)
    {
        if ((Uid is null) == (Pattern is null)) yield return new("set exactly one of Uid and Pattern", []);
        else if (Pattern is not null && UidPattern.Parse(Pattern) is { } pattern && Count > pattern.Count)
            yield return new($"must be between 1 and the {pattern.Count} uids of {pattern.Text}; got {Count}", [nameof(Count)]);
    }
}
