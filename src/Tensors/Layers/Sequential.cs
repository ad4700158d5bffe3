namespace MoEMesh.Tensors.Layers;

/// <summary>Layers applied in order. Intermediate activations are pooled and released as soon as possible.</summary>
public sealed class Sequential : ILayer
{
    private readonly ILayer[] _layers;

    /// <summary>Creates the chain.</summary>
    public Sequential(params ILayer[] layers)
    {
        if (layers.Length == 0) throw new ArgumentException("A Sequential needs at least one layer.", nameof(layers));
        _layers = layers;
        Parameters = layers.SelectMany(l => l.Parameters).ToArray();
    }

    /// <summary>The layers, in order.</summary>
    public IReadOnlyList<ILayer> Layers => _layers;

    /// <inheritdoc />
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <inheritdoc />
    public Tensor Forward(Tensor input, ActivationTape? tape = null)
    {
        var current = input;
        foreach (var layer in _layers)
        {
            var next = layer.Forward(current, tape);
            Release(current, input, tape);
            current = next;
        }
        return current;
    }

    /// <inheritdoc />
    public Tensor Backward(Tensor outputGradient, ActivationTape tape)
    {
        var current = outputGradient;
        for (int i = _layers.Length - 1; i >= 0; i--)
        {
            var next = _layers[i].Backward(current, tape);
            if (!ReferenceEquals(current, outputGradient)) current.Dispose();
            current = next;
        }
        return current;
    }

    /// <inheritdoc />
    public override string ToString() => $"Sequential({string.Join(", ", _layers.Select(l => l.ToString()))})";

    /// <summary>An intermediate is needed by backward when there is a tape, so the tape disposes it later.</summary>
    private static void Release(Tensor intermediate, Tensor input, ActivationTape? tape)
    {
        if (ReferenceEquals(intermediate, input)) return;
        if (tape is null) intermediate.Dispose();
        else tape.Own(intermediate);
    }
}
