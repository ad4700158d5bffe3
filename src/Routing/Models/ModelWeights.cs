using MoEMesh.Routing.Gating;
using MoEMesh.Tensors;
using MoEMesh.Tensors.Layers;
using MoEMesh.Tensors.Serialization;

namespace MoEMesh.Routing.Models;

/// <summary>
/// The parameters a gating node holds for a model, by hierarchical names: the trunk's embedding table
/// (<c>trunk.weight</c>), each layer's gate (<c>layers.1.gate.0.weight</c>, <c>layers.1.gate.null.weight</c>, …)
/// and the head (<c>head.weight</c>, <c>head.bias</c>). The experts' weights live on their hosts.
/// </summary>
public sealed class ModelWeights
{
    private ModelWeights(ModelSpec spec, ulong seed)
    {
        spec.Validate();
        var random = new SeededRandom(seed);
        int width = spec.Trunk.Width;
        Trunk = new EmbeddingBag(spec.Trunk.Buckets, width, random, BagMode.Mean, "trunk");
        Gates = spec.Layers.Select((layer, i) =>
            new GatingNetwork(layer.ExpertGrid, width, random.NextUInt64(), layer.NullExperts, $"layers.{i}.gate")).ToArray();
        Head = new Linear(width, spec.Head.Labels.Count, random, "head");
        Parameters = [.. Trunk.Parameters, .. Gates.SelectMany(g => g.Parameters), .. Head.Parameters];
    }

    /// <summary>Text features to width d.</summary>
    public EmbeddingBag Trunk { get; }

    /// <summary>One gate per layer.</summary>
    public IReadOnlyList<GatingNetwork> Gates { get; }

    /// <summary>Width d to class logits.</summary>
    public Linear Head { get; }

    /// <summary>Every parameter, each under a name unique in the model.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Freshly initialised weights for <paramref name="spec"/>, seeded.</summary>
    /// <exception cref="ArgumentException">The spec cannot work; the message names what.</exception>
    public static ModelWeights Initialize(ModelSpec spec, ulong seed) => new(spec, seed);

    /// <summary>The weights stored in <paramref name="tensors"/> for <paramref name="spec"/>.</summary>
    /// <exception cref="InvalidDataException">A tensor is missing, misshapen or not part of the model; the message names it.</exception>
    public static ModelWeights Load(ModelSpec spec, IReadOnlyDictionary<string, Tensor> tensors)
    {
        var weights = new ModelWeights(spec, seed: 0);
        foreach (var p in weights.Parameters)
        {
            if (!tensors.TryGetValue(p.Name, out var stored))
                throw new InvalidDataException($"the model file has no tensor '{p.Name}' {p.Value.Shape}, which its metadata calls for.");
            if (stored.Shape != p.Value.Shape)
                throw new InvalidDataException($"tensor '{p.Name}' has shape {stored.Shape}; the metadata calls for {p.Value.Shape}.");
            stored.Span.CopyTo(p.Value.Span);
        }
        var extra = tensors.Keys.Except(weights.Parameters.Select(p => p.Name), StringComparer.Ordinal).Order(StringComparer.Ordinal).FirstOrDefault();
        if (extra is not null) throw new InvalidDataException($"tensor '{extra}' belongs to no part of the model its metadata describes.");
        return weights;
    }

    /// <summary>The tensors to save, by name.</summary>
    public IEnumerable<SafeTensorEntry> Entries() => Parameters.Select(p => new SafeTensorEntry(p.Name, p.Value));
}
