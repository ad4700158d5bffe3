using MoEMesh.Routing.Gating;
using MoEMesh.Tensors;
using MoEMesh.Tensors.Layers;
using MoEMesh.Tensors.Serialization;

namespace MoEMesh.Routing.Models;

/// <summary>
/// The parameters a gating node holds for a model, by hierarchical names: the trunk's embedding table
/// (<c>trunk.weight</c>), each layer's gate (<c>layers.1.gate.0.weight</c>, <c>layers.1.gate.null.weight</c>, …),
/// each layer's shared expert when it has one (<c>layers.1.shared.w1.weight</c>, …) and the head
/// (<c>head.weight</c>, <c>head.bias</c>). The routed experts' weights live on their hosts.
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
            layer.IsDense ? null : new GatingNetwork(layer.Grid, width, random.NextUInt64(), layer.NullExperts, $"layers.{i}.gate")).ToArray();
        Head = new Linear(width, spec.Head.Labels.Count, random, "head");
        // Made last, so a model without shared experts draws the same weights as before they existed.
        SharedExperts = spec.Layers.Select((layer, i) => layer.SharedExpertInner == 0 ? null : SharedExpert(width, layer.SharedExpertInner, random, i)).ToArray();
        Parameters = [.. Trunk.Parameters, .. Gates.SelectMany(g => g?.Parameters ?? []), .. SharedExperts.SelectMany(e => e?.Parameters ?? []), .. Head.Parameters];
    }

    /// <summary>Per layer, its shared expert (w1, GELU, w2), or null.</summary>
    public IReadOnlyList<Sequential?> SharedExperts { get; }

    /// <summary>Text features to width d.</summary>
    public EmbeddingBag Trunk { get; }

    /// <summary>Per layer, its gate; null for a dense layer.</summary>
    public IReadOnlyList<GatingNetwork?> Gates { get; }

    /// <summary>Width d to class logits.</summary>
    public Linear Head { get; }

    /// <summary>Every parameter, each under a name unique in the model.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Freshly initialised weights for <paramref name="spec"/>, seeded.</summary>
    /// <exception cref="ArgumentException">The spec cannot work; the message names what.</exception>
    public static ModelWeights Initialize(ModelSpec spec, ulong seed) => new(spec, seed);

    /// <summary>
    /// Starts from the trunk of another model (<paramref name="source"/>, read with <paramref name="sourceSpec"/>): the
    /// same features, hash and table shape, so texts land where that model put them.
    /// </summary>
    /// <exception cref="ArgumentException">The trunks differ in shape or features; the message says how.</exception>
    public void TakeTrunk(TrunkSpec sourceSpec, EmbeddingBag source, TrunkSpec spec)
    {
        if (sourceSpec != spec)
            throw new ArgumentException($"its trunk is {sourceSpec.Buckets} x {sourceSpec.Width} ({sourceSpec.Features}, {sourceSpec.Hash}); this model's is {spec.Buckets} x {spec.Width} ({spec.Features}, {spec.Hash}).");
        source.Table.Value.Span.CopyTo(Trunk.Table.Value.Span);
    }

    /// <summary>
    /// The names and shapes of the parameters of <paramref name="spec"/>, in the order the weights hold them,
    /// without allocating them (a file is checked against it before anything the size of the model is made).
    /// </summary>
    public static IEnumerable<(string Name, TensorShape Shape)> Layout(ModelSpec spec)
    {
        int d = spec.Trunk.Width;
        yield return ("trunk.weight", new TensorShape(spec.Trunk.Buckets, d));
        for (int i = 0; i < spec.Layers.Count; i++)
        {
            var layer = spec.Layers[i];
            if (layer.IsDense) continue;
            var parts = layer.Sizes.Select((size, dim) => (Name: dim.ToString(System.Globalization.CultureInfo.InvariantCulture), Size: size));
            foreach (var (part, size) in layer.NullExperts > 0 ? parts.Append(("null", layer.NullExperts)) : parts)
            {
                yield return ($"layers.{i}.gate.{part}.weight", new TensorShape(size, d));
                yield return ($"layers.{i}.gate.{part}.bias", new TensorShape(size));
            }
        }
        for (int i = 0; i < spec.Layers.Count; i++)
        {
            if (spec.Layers[i].SharedExpertInner is not (> 0 and var inner)) continue;
            yield return ($"layers.{i}.shared.w1.weight", new TensorShape(inner, d));
            yield return ($"layers.{i}.shared.w1.bias", new TensorShape(inner));
            yield return ($"layers.{i}.shared.w2.weight", new TensorShape(d, inner));
            yield return ($"layers.{i}.shared.w2.bias", new TensorShape(d));
        }
        yield return ("head.weight", new TensorShape(spec.Head.Labels.Count, d));
        yield return ("head.bias", new TensorShape(spec.Head.Labels.Count));
    }

    /// <summary>The weights stored in <paramref name="tensors"/> for <paramref name="spec"/>.</summary>
    /// <exception cref="InvalidDataException">A tensor is missing, misshapen or not part of the model; the message names it.</exception>
    public static ModelWeights Load(ModelSpec spec, IReadOnlyDictionary<string, Tensor> tensors)
    {
        // Checked before anything is allocated: the weights made below are then exactly as large as the file's tensors.
        var layout = Layout(spec).ToArray();
        foreach (var (name, shape) in layout)
        {
            if (!tensors.TryGetValue(name, out var stored))
                throw new InvalidDataException($"the model file has no tensor '{name}' {shape}, which its metadata calls for.");
            if (stored.Shape != shape)
                throw new InvalidDataException($"tensor '{name}' has shape {stored.Shape}; the metadata calls for {shape}.");
        }
        var extra = tensors.Keys.Except(layout.Select(l => l.Name), StringComparer.Ordinal).Order(StringComparer.Ordinal).FirstOrDefault();
        if (extra is not null) throw new InvalidDataException($"tensor '{extra}' belongs to no part of the model its metadata describes.");
        var weights = new ModelWeights(spec, seed: 0);
        foreach (var p in weights.Parameters) tensors[p.Name].Span.CopyTo(p.Value.Span);
        return weights;
    }

    private static Sequential SharedExpert(int width, int inner, SeededRandom random, int layer) =>
        new(new Linear(width, inner, random, $"layers.{layer}.shared.w1"), new Gelu(), new Linear(inner, width, random, $"layers.{layer}.shared.w2"));

    /// <summary>The tensors to save, by name.</summary>
    public IEnumerable<SafeTensorEntry> Entries() => Parameters.Select(p => new SafeTensorEntry(p.Name, p.Value));
}
