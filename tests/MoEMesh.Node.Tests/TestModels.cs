using MoEMesh.Routing.Gating;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Tests;

/// <summary>Model files for tests: a small spec over an ffn grid, saved with seeded weights.</summary>
internal static class TestModels
{
    public static ModelSpec Spec(int width = 8, int buckets = 256, string grid = "ffn", int rows = 2, int columns = 2, string[]? labels = null, int layers = 1) =>
        new(new TrunkSpec(buckets, width), Enumerable.Repeat(new LayerSpec(grid, [rows, columns], "ffn", width, K: 2, RouterLosses: new RouterLossWeights()), layers).ToArray(),
            new HeadSpec(labels ?? ["a", "b", "c"]), new DataColumns());

    /// <summary>Saves a model with seeded weights to <paramref name="path"/> and returns the weights.</summary>
    public static ModelWeights Write(string path, string name, long version, ModelSpec? spec = null, ulong seed = 7)
    {
        spec ??= Spec();
        var weights = ModelWeights.Initialize(spec, seed);
        ModelFile.Save(path, name, version, spec, weights);
        return weights;
    }
}
