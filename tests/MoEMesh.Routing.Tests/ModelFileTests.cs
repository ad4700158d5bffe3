using MoEMesh.Routing.Gating;
using MoEMesh.Routing.Models;
using MoEMesh.Tensors;
using MoEMesh.Tensors.Serialization;

namespace MoEMesh.Routing.Tests;

/// <summary>The model file: what it holds, that it loads back whole, and the files it refuses.</summary>
public sealed class ModelFileTests : IDisposable
{
    private readonly string _folder = System.IO.Directory.CreateTempSubdirectory("moemesh-modelfile-").FullName;

    public void Dispose() => System.IO.Directory.Delete(_folder, recursive: true);

    private static ModelSpec Spec(int layers = 2, int nullExperts = 1, int sharedInner = 12) => new(
        new TrunkSpec(128, 6),
        Enumerable.Range(0, layers).Select(i => new LayerSpec("ffn", [3, 2], "ffn", 6, K: 2, TopP: i == 0 ? null : 0.9, NullExperts: nullExperts,
            RouterLosses: new RouterLossWeights(0.02f, 0.001f, 0.1f, 0.05f), SharedExpertInner: i == 1 ? sharedInner : 0)).ToArray(),
        new HeadSpec(["noun.animal", "news", "verb.motion"]),
        new DataColumns("body", "class", "domain"),
        new TrainingSummary(120, 2.5, 900, 0.42, 100, 0.61, 0.55, 12.3, false));

    private string Save(ModelSpec spec, ModelWeights weights, string name = "genre", long version = 42)
    {
        var path = Path.Combine(_folder, name + ".safetensors");
        ModelFile.Save(path, name, version, spec, weights);
        return path;
    }

    [Fact]
    public void SaveThenLoad_GivesTheSameSpecAndEveryWeight_UnderHierarchicalNames()
    {
        var spec = Spec();
        var weights = ModelWeights.Initialize(spec, seed: 5);
        var loaded = ModelFile.Load(Save(spec, weights));

        Assert.Equal(("genre", 42L), (loaded.Name, loaded.Version));
        Assert.Equal(spec.Trunk, loaded.Spec.Trunk);
        Assert.Equal(spec.Head.Labels, loaded.Spec.Head.Labels);
        Assert.Equal(spec.Data, loaded.Spec.Data);
        Assert.Equal(spec.Training, loaded.Spec.Training);
        for (int i = 0; i < spec.Layers.Count; i++)
        {
            Assert.Equal(spec.Layers[i].Sizes, loaded.Spec.Layers[i].Sizes);
            Assert.Equal(spec.Layers[i] with { Sizes = [] }, loaded.Spec.Layers[i] with { Sizes = [] });
        }
        Assert.Equal(weights.Parameters.Select(p => p.Name), loaded.Weights.Parameters.Select(p => p.Name));
        Assert.Contains("layers.1.gate.null.weight", loaded.Weights.Parameters.Select(p => p.Name));
        Assert.Contains("layers.1.shared.w2.weight", loaded.Weights.Parameters.Select(p => p.Name));
        Assert.Null(loaded.Weights.SharedExperts[0]);
        Assert.NotNull(loaded.Weights.SharedExperts[1]);
        foreach (var (a, b) in weights.Parameters.Zip(loaded.Weights.Parameters)) Assert.Equal(a.Value.ToArray(), b.Value.ToArray());
    }

    [Fact]
    public void ADenseModel_HasNoGate_AndLoadsBackWhole()
    {
        var spec = new ModelSpec(new TrunkSpec(128, 6), [new LayerSpec("ffn", [1], "dense", 6, K: 0, SharedExpertInner: 24)], new HeadSpec(["a", "b", "c"]), new DataColumns());
        var weights = ModelWeights.Initialize(spec, seed: 3);
        Assert.Null(weights.Gates[0]);
        Assert.DoesNotContain(weights.Parameters, p => p.Name.Contains(".gate.", StringComparison.Ordinal));
        Assert.Equal(ModelWeights.Layout(spec), weights.Parameters.Select(p => (p.Name, p.Value.Shape)));
        Assert.Equal(spec.ParameterCount(), weights.Parameters.Sum(p => (long)p.Value.Length));
        var loaded = ModelFile.Load(Save(spec, weights, "dense"));
        Assert.True(loaded.Spec.Layers[0].IsDense);
        foreach (var (a, b) in weights.Parameters.Zip(loaded.Weights.Parameters)) Assert.Equal(a.Value.ToArray(), b.Value.ToArray());
        // A dense layer is its shared expert alone: no top-p, null experts or missing shared expert.
        Assert.Contains("a dense layer (k = 0) is its shared expert alone", Assert.Throws<ArgumentException>(() =>
            new ModelSpec(spec.Trunk, [spec.Layers[0] with { SharedExpertInner = 0 }], spec.Head, spec.Data).Validate()).Message);
    }

    [Fact]
    public void SharedExperts_AreDrawnLast_SoEveryOtherWeightIsAsWithoutThem()
    {
        var with = ModelWeights.Initialize(Spec(), seed: 9);
        var without = ModelWeights.Initialize(Spec(sharedInner: 0), seed: 9);
        var others = with.Parameters.Where(p => !p.Name.Contains(".shared.", StringComparison.Ordinal)).ToArray();
        Assert.Equal(without.Parameters.Select(p => p.Name), others.Select(p => p.Name));
        foreach (var (a, b) in others.Zip(without.Parameters)) Assert.Equal(a.Value.ToArray(), b.Value.ToArray());
    }

    [Fact]
    public void Spec_WithMoreParametersThanAllowed_IsRefusedBeforeAnythingIsAllocated()
    {
        var huge = new ModelSpec(new TrunkSpec(1 << 24, 8192), [new LayerSpec("ffn", [8], "ffn", 8192)], new HeadSpec(["a", "b"]), new DataColumns());
        Assert.Contains($"parameters; at most {ModelSpec.MaxParameters} are allowed", Assert.Throws<ArgumentException>(huge.Validate).Message);
    }

    [Fact]
    public void Layout_IsWhatTheWeightsHold_AndCountsTheParameters()
    {
        var spec = Spec();
        var weights = ModelWeights.Initialize(spec, 1);
        Assert.Equal(ModelWeights.Layout(spec), weights.Parameters.Select(p => (p.Name, p.Value.Shape)));
        Assert.Equal(spec.ParameterCount(), weights.Parameters.Sum(p => (long)p.Value.Length));
    }

    [Fact]
    public void ModelFile_IsPlainSafetensors_WithItsDescriptionInTheMetadata()
    {
        var spec = Spec(layers: 1, nullExperts: 0);
        using var content = SafeTensorsFile.ReadFile(Save(spec, ModelWeights.Initialize(spec, 1)));
        Assert.Equal("moemesh.model", content.Metadata["format"]);
        Assert.Equal("1", content.Metadata["format_version"]);
        Assert.Contains("\"labels\":[\"noun.animal\",\"news\",\"verb.motion\"]", content.Metadata["head"]);
        Assert.Contains("\"expert_type\":\"ffn\"", content.Metadata["layers"]);
        Assert.Contains("\"buckets\":128", content.Metadata["trunk"]);
        Assert.Contains("\"text_column\":\"body\"", content.Metadata["data"]);
        Assert.Equal(new TensorShape(128, 6), content.Get("trunk.weight").Shape);
        Assert.Equal(new TensorShape(3, 6), content.Get("layers.0.gate.0.weight").Shape);
        Assert.Equal(new TensorShape(3, 6), content.Get("head.weight").Shape);
    }

    public static TheoryData<string, string, string> Breakages => new()
    {
        { "format_version", "2", "format version 2; this moemesh reads format version 1" },
        { "format", "pytorch", "format 'pytorch'" },
        { "layers", "[{\"grid\": \"ffn\"", "metadata 'layers' does not parse" },
        { "trunk", "{\"width\": 6}", "metadata 'trunk' does not parse" },
        { "head", "{\"labels\": [\"only\"]}", "at least 2 labels" },
        { "version", "soon", "'version' is 'soon'" },
        { "layers", "[null]", "a null layer" },
        { "trunk", "{\"buckets\": 16777216, \"width\": 6}", "'trunk.weight' has shape [128, 6]; the metadata calls for [16777216, 6]" },
    };

    [Theory]
    [MemberData(nameof(Breakages))]
    public void Load_RefusesBrokenMetadata_NamingTheProblem(string key, string value, string expected)
    {
        var spec = Spec();
        var path = Save(spec, ModelWeights.Initialize(spec, 2));
        Rewrite(path, metadata => metadata[key] = value);
        var e = Assert.Throws<InvalidDataException>(() => ModelFile.Load(path));
        Assert.StartsWith(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Load_RefusesAMissingTensor_NamingIt()
    {
        var spec = Spec();
        var path = Save(spec, ModelWeights.Initialize(spec, 3));
        Rewrite(path, tensors: entries => entries.Where(e => e.Name != "layers.1.gate.1.bias"));
        Assert.Contains("no tensor 'layers.1.gate.1.bias'", Assert.Throws<InvalidDataException>(() => ModelFile.Load(path)).Message);
    }

    [Fact]
    public void Load_RefusesAMisshapenTensor_NamingBothShapes()
    {
        var spec = Spec();
        var path = Save(spec, ModelWeights.Initialize(spec, 4));
        using var wrong = Tensor.Zeros(4, 6);
        Rewrite(path, tensors: entries => entries.Select(e => e.Name == "head.weight" ? new SafeTensorEntry("head.weight", wrong) : e));
        var message = Assert.Throws<InvalidDataException>(() => ModelFile.Load(path)).Message;
        Assert.Contains("'head.weight' has shape [4, 6]; the metadata calls for [3, 6]", message);
    }

    [Fact]
    public void Load_RefusesAPlainSafetensorsFile_WithoutModelMetadata()
    {
        var path = Path.Combine(_folder, "plain.safetensors");
        using var t = Tensor.Zeros(2, 2);
        SafeTensorsFile.WriteFile(path, [new SafeTensorEntry("w", t)]);
        Assert.Contains("no 'format' entry", Assert.Throws<InvalidDataException>(() => ModelFile.Load(path)).Message);
    }

    [Theory]
    [InlineData("genre", true)]
    [InlineData("wn.v2_final-1", true)]
    [InlineData("", false)]
    [InlineData("-lead", false)]
    [InlineData("a/b", false)]
    [InlineData("a:b", false)]
    [InlineData("8e5N6vVz7ZaDk5xyoGc5BppcGXip5hXqEaXavwk1nZqy", false)]
    public void ModelNames_AreFileAndKeySafe(string name, bool valid) => Assert.Equal(valid, ModelFile.IsValidName(name, out _));

    /// <summary>Rewrites a saved file with changed metadata or tensors.</summary>
    private static void Rewrite(string path, Action<Dictionary<string, string>>? metadata = null, Func<IEnumerable<SafeTensorEntry>, IEnumerable<SafeTensorEntry>>? tensors = null)
    {
        using var content = SafeTensorsFile.ReadFile(path);
        var meta = content.Metadata.ToDictionary();
        metadata?.Invoke(meta);
        var entries = content.Tensors.Select(t => new SafeTensorEntry(t.Key, t.Value));
        SafeTensorsFile.WriteFile(path, (tensors?.Invoke(entries) ?? entries).ToArray(), meta);
    }
}
