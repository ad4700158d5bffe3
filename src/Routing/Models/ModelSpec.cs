using System.Text.Json.Serialization;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Gating;

namespace MoEMesh.Routing.Models;

/// <summary>
/// Everything needed to rebuild and serve a model, as the model file's metadata carries it: the trunk, each
/// mixture-of-experts layer, the head's labels, the training data's columns and what training measured.
/// </summary>
/// <param name="Trunk">Features and embedding.</param>
/// <param name="Layers">The residual mixture-of-experts layers, first to last.</param>
/// <param name="Head">The classes.</param>
/// <param name="Data">The columns the model was trained from.</param>
/// <param name="Training">What training measured; null before training.</param>
public sealed record ModelSpec(TrunkSpec Trunk, IReadOnlyList<LayerSpec> Layers, HeadSpec Head, DataColumns Data, TrainingSummary? Training = null)
{
    /// <summary>Most parameters a model may have (trunk, gates and head together): 2^30, 4 GiB of float32.</summary>
    public const long MaxParameters = 1L << 30;

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first value that cannot work.</summary>
    public void Validate()
    {
        Trunk.Validate();
        if (Layers.Count is < 1 or > 16) throw new ArgumentException($"A model has 1 to 16 mixture-of-experts layers; got {Layers.Count}.");
        for (int i = 0; i < Layers.Count; i++) Layers[i].Validate(i, Trunk.Width);
        Head.Validate();
        Data.Validate();
        if (ParameterCount() > MaxParameters) throw new ArgumentException($"The model would have {ParameterCount()} parameters; at most {MaxParameters} are allowed.");
    }

    /// <summary>
    /// The parameters the gating node holds: the trunk's table, each gate's Linear per grid dimension (and
    /// its null experts'), each shared expert's two Linears, and the head; what <see cref="ModelWeights"/> allocates, computed without allocating.
    /// </summary>
    public long ParameterCount()
    {
        long d = Trunk.Width;
        long count = checked(Trunk.Buckets * d + Head.Labels.Count * (d + 1));
        foreach (var layer in Layers)
            count = checked(count + (layer.IsDense ? 0 : (layer.Sizes.Sum(s => (long)s) + layer.NullExperts) * (d + 1))
                + layer.SharedExpertInner * (2 * d + 1) + (layer.SharedExpertInner > 0 ? d : 0));
        return count;
    }
}

/// <summary>
/// The trunk: text to hashed features (<see cref="TextFeatures"/>), then the mean of their embedding rows.
/// </summary>
/// <param name="Buckets">Rows of the embedding table (features are hashed into them).</param>
/// <param name="Width">Width d of the embedding and of every layer.</param>
/// <param name="Features">The feature rule; <see cref="TextFeatures.WordsAndBigrams"/> is the one there is.</param>
/// <param name="Hash">The hash rule; <see cref="TextFeatures.Fnv1a64"/> is the one there is.</param>
public sealed record TrunkSpec(int Buckets, int Width, string Features = TextFeatures.WordsAndBigrams, string Hash = TextFeatures.Fnv1a64)
{
    /// <summary>Throws naming the value that cannot work.</summary>
    public void Validate()
    {
        if (Buckets is < 1 or > 1 << 24) throw new ArgumentException($"Trunk buckets must be between 1 and {1 << 24}; got {Buckets}.");
        if (Width is < 1 or > 8192) throw new ArgumentException($"Trunk width must be between 1 and 8192; got {Width}.");
        if (Features != TextFeatures.WordsAndBigrams) throw new ArgumentException($"Unknown feature rule '{Features}'; this moemesh knows {TextFeatures.WordsAndBigrams}.");
        if (Hash != TextFeatures.Fnv1a64) throw new ArgumentException($"Unknown hash rule '{Hash}'; this moemesh knows {TextFeatures.Fnv1a64}.");
    }
}

/// <summary>One residual mixture-of-experts layer.</summary>
/// <param name="GridName">The uid name of its experts ("ffn"); "grid" in the model file.</param>
/// <param name="Sizes">The grid's size per dimension ([4, 4] for ffn.0.0 … ffn.3.3).</param>
/// <param name="ExpertType">The expert type the layer was trained with; hosts of another type are skipped.</param>
/// <param name="ExpertWidth">The experts' input and output width: the trunk's (the layers are residual).</param>
/// <param name="K">Experts per sample at most; 0 makes a dense layer: no gate and no routed experts, its shared expert is the whole layer (a baseline).</param>
/// <param name="TopP">Dynamic top-p, or null for plain top-k.</param>
/// <param name="NullExperts">AdaMoE null experts.</param>
/// <param name="BeamWidth">Prefixes beam search expands per sample per round.</param>
/// <param name="RouterLosses">Router loss weights while training; null for none.</param>
/// <param name="SharedExpertInner">
/// Inner width of the layer's shared expert (DeepSeekMoE), 0 for none: an ffn every sample passes through
/// beside the routed experts, held with the gate by every node that runs the model, so a text still gets a
/// trained answer when every remote expert fails.
/// </param>
public sealed record LayerSpec([property: JsonPropertyName("grid")] string GridName, IReadOnlyList<int> Sizes, string ExpertType, int ExpertWidth, int K = 2, double? TopP = null,
    int NullExperts = 0, int BeamWidth = 4, RouterLossWeights? RouterLosses = null, int SharedExpertInner = 0)
{
    /// <summary>The expert grid.</summary>
    [JsonIgnore]
    public ExpertGrid Grid => new(GridName, [.. Sizes]);

    /// <summary>A dense layer (k = 0): h ← h + Shared(h), no gate, no routed experts.</summary>
    [JsonIgnore]
    public bool IsDense => K == 0;

    /// <summary>Throws naming the layer and the value that cannot work.</summary>
    public void Validate(int index, int width)
    {
        string at = $"Layer {index}";
        if (!ExpertPrefix.TryParse(GridName + ".", out _, out var error)) throw new ArgumentException($"{at}: grid name '{GridName}': {error}");
        if (ExpertWidth != width) throw new ArgumentException($"{at}: its experts have width {ExpertWidth}, but a residual layer's must be the trunk's, {width}.");
        if (Sizes is null || Sizes.Count is < 1 or > 8 || Sizes.Any(s => s is < 1 or > 4096))
            throw new ArgumentException($"{at}: the grid needs 1 to 8 dimensions of size 1 to 4096; got [{string.Join(", ", Sizes ?? [])}].");
        if (string.IsNullOrWhiteSpace(ExpertType)) throw new ArgumentException($"{at}: the expert type is empty.");
        if (K is < 0 or > 64) throw new ArgumentException($"{at}: k must be between 0 (a dense layer) and 64; got {K}.");
        if (IsDense && (SharedExpertInner == 0 || TopP is not null || NullExperts > 0))
            throw new ArgumentException($"{at}: a dense layer (k = 0) is its shared expert alone: it needs a shared expert's inner width and no top-p or null experts.");
        if (TopP is { } p && !(p > 0 && p <= 1)) throw new ArgumentException($"{at}: top-p must be in (0, 1]; got {p}.");
        if (NullExperts is < 0 or > 64) throw new ArgumentException($"{at}: null experts must be between 0 and 64; got {NullExperts}.");
        if (BeamWidth is < 1 or > 64) throw new ArgumentException($"{at}: beam width must be between 1 and 64; got {BeamWidth}.");
        if (SharedExpertInner is < 0 or > 65_536) throw new ArgumentException($"{at}: the shared expert's inner width must be between 0 (none) and 65536; got {SharedExpertInner}.");
        if (RouterLosses is { AreValid: false } w)
            throw new ArgumentException($"{at}: router loss weights must be finite and not negative; got {w}.");
    }

    /// <summary>The layer options this spec gives.</summary>
    public MixtureOfExpertsOptions Options() => new()
    {
        K = K,
        TopP = TopP,
        BeamWidth = BeamWidth,
        RouterLosses = RouterLosses,
        Kind = new ExpertKind(ExpertType, ExpertWidth),
        AllowUnanswered = SharedExpertInner > 0,
    };
}

/// <summary>The classification head.</summary>
/// <param name="Labels">Class names, in the order of the head's outputs.</param>
public sealed record HeadSpec(IReadOnlyList<string> Labels)
{
    /// <summary>Throws naming the value that cannot work.</summary>
    public void Validate()
    {
        if (Labels is null || Labels.Count < 2) throw new ArgumentException($"The head needs at least 2 labels; got {Labels?.Count ?? 0}.");
        if (Labels.Count > 100_000) throw new ArgumentException($"The head takes at most 100000 labels; got {Labels.Count}.");
        var duplicate = Labels.GroupBy(l => l, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"The label '{duplicate.Key}' appears twice in the head.");
    }
}

/// <summary>The columns of the data the model was trained from, so evaluation reads the same ones.</summary>
/// <param name="TextColumn">The text.</param>
/// <param name="LabelColumn">The label.</param>
/// <param name="DomainColumn">The domain, when the data had one.</param>
public sealed record DataColumns(string TextColumn = "text", string LabelColumn = "label", string? DomainColumn = null)
{
    /// <summary>Throws naming the value that cannot work.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(TextColumn) || string.IsNullOrWhiteSpace(LabelColumn)) throw new ArgumentException("The text and label columns must be named.");
    }
}

/// <summary>What training did and measured.</summary>
/// <param name="Steps">Optimizer steps taken.</param>
/// <param name="Epochs">Passes over the training data (fractional when stopped early or set by steps).</param>
/// <param name="TrainSamples">Training examples.</param>
/// <param name="FinalLoss">Mean cross-entropy over the last steps.</param>
/// <param name="EvalSamples">Evaluation examples.</param>
/// <param name="Accuracy">Accuracy on the evaluation set.</param>
/// <param name="MacroF1">Macro-F1 on the evaluation set.</param>
/// <param name="Seconds">Wall time of training.</param>
/// <param name="Stopped">Whether training was stopped before its planned steps.</param>
public sealed record TrainingSummary(long Steps, double Epochs, int TrainSamples, double FinalLoss, int EvalSamples, double Accuracy, double MacroF1, double Seconds, bool Stopped);
