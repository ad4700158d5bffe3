using System.Numerics.Tensors;

namespace MoEMesh.Tensors.Layers;

/// <summary>How an <see cref="EmbeddingBag"/> combines the rows of a bag.</summary>
public enum BagMode
{
    /// <summary>Weighted sum of rows.</summary>
    Sum,

    /// <summary>Weighted sum divided by the number of indices in the bag (empty bags give zeros).</summary>
    Mean,
}

/// <summary>
/// Sums (or averages) rows of a table for each bag of hashed feature indices. Its gradient is
/// row-sparse: backward touches only rows that appeared in the batch.
/// </summary>
public sealed class EmbeddingBag
{
    /// <summary>Creates the table, initialised N(0, 1/√dim) so a bag's sum starts at unit scale per feature.</summary>
    public EmbeddingBag(int buckets, int dimension, SeededRandom random, BagMode mode = BagMode.Sum, string name = "embedding")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(buckets, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        Buckets = buckets;
        Dimension = dimension;
        Mode = mode;
        var table = Tensor.Uninitialized([buckets, dimension]);
        random.FillNormal(table.Span, 0f, 1f / MathF.Sqrt(dimension));
        Table = new Parameter(name + ".weight", table, sparseRows: true);
    }

    /// <summary>Rows in the table.</summary>
    public int Buckets { get; }

    /// <summary>Width of each row.</summary>
    public int Dimension { get; }

    /// <summary>Sum or mean.</summary>
    public BagMode Mode { get; }

    /// <summary>The table [buckets, dimension]; its gradient is sparse.</summary>
    public Parameter Table { get; }

    /// <summary>Trainable parameters.</summary>
    public IReadOnlyList<Parameter> Parameters => [Table];

    /// <summary>One output row per bag.</summary>
    public Tensor Forward(SparseFeatures features)
    {
        var output = Tensor.Zeros([features.Rows, Dimension]);
        for (int r = 0; r < features.Rows; r++)
        {
            var row = output.Row(r);
            var (start, end, scale) = Bag(features, r);
            for (int i = start; i < end; i++)
                TensorPrimitives.MultiplyAdd(Table.Value.Row(features.Indices[i]), Weight(features, i, scale), row, row);
        }
        return output;
    }

    /// <summary>Accumulates the table gradient for the rows the batch used.</summary>
    public void Backward(SparseFeatures features, Tensor outputGradient)
    {
        outputGradient.RequireShape([features.Rows, Dimension], $"output gradient of {this}");
        for (int r = 0; r < features.Rows; r++)
        {
            var g = outputGradient.Row(r);
            var (start, end, scale) = Bag(features, r);
            for (int i = start; i < end; i++)
            {
                int index = features.Indices[i];
                var gradientRow = Table.Gradient.Row(index);
                TensorPrimitives.MultiplyAdd(g, Weight(features, i, scale), gradientRow, gradientRow);
                Table.TouchRow(index);
            }
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"EmbeddingBag({Buckets}, {Dimension}, {Mode})";

    /// <summary>The index range of bag <paramref name="row"/> and its mean scale; checks every index once.</summary>
    private (int Start, int End, float Scale) Bag(SparseFeatures features, int row)
    {
        int start = features.Offsets[row], end = features.Offsets[row + 1];
        for (int i = start; i < end; i++)
            if ((uint)features.Indices[i] >= (uint)Buckets)
                throw new ArgumentException($"Feature index {features.Indices[i]} of sample {row} is outside {this}.", nameof(features));
        float scale = Mode == BagMode.Mean && end > start ? 1f / (end - start) : 1f;
        return (start, end, scale);
    }

    private static float Weight(SparseFeatures features, int i, float scale) => scale * (features.Weights?[i] ?? 1f);
}
