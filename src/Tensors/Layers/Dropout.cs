namespace MoEMesh.Tensors.Layers;

/// <summary>
/// Inverted dropout whose mask is explicit: element i of a batch is kept when
/// <see cref="SeededRandom.UniformAt"/>(<see cref="MaskSeed"/>, i) ≥ rate. The same seed gives the same
/// mask on any host, so a backward that recomputes the forward, here or on another node, drops exactly
/// the elements the forward dropped. The caller chooses a fresh seed per batch.
/// </summary>
public sealed class Dropout : ILayer
{
    /// <summary>Creates the layer.</summary>
    /// <param name="rate">Probability of dropping an element, in [0, 1).</param>
    public Dropout(float rate)
    {
        if (!(rate >= 0f && rate < 1f))
            throw new ArgumentOutOfRangeException(nameof(rate), $"Dropout rate must be in [0, 1); got {rate}.");
        Rate = rate;
    }

    /// <summary>Probability of dropping an element.</summary>
    public float Rate { get; }

    /// <summary>Whether dropout applies; when false the layer is the identity.</summary>
    public bool Training { get; set; } = true;

    /// <summary>Seed of the mask for the current batch.</summary>
    public ulong MaskSeed { get; set; }

    /// <inheritdoc />
    public IReadOnlyList<Parameter> Parameters => [];

    /// <inheritdoc />
    public Tensor Forward(Tensor input, ActivationTape? tape = null) => ApplyMask(input);

    /// <inheritdoc />
    public Tensor Backward(Tensor outputGradient, ActivationTape tape) => ApplyMask(outputGradient);

    /// <summary>1 where the current mask keeps element <paramref name="index"/>, else 0 (before scaling).</summary>
    public bool Keeps(long index) => !Training || SeededRandom.UniformAt(MaskSeed, index) >= Rate;

    private Tensor ApplyMask(Tensor x)
    {
        var result = x.Clone();
        if (!Training || Rate == 0f) return result;
        var span = result.Span;
        float scale = 1f / (1f - Rate);
        for (int i = 0; i < span.Length; i++)
            span[i] = Keeps(i) ? span[i] * scale : 0f;
        return result;
    }

    /// <inheritdoc />
    public override string ToString() => $"Dropout({Rate})";
}
