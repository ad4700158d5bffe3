using System.Text;

namespace MoEMesh.Tensors.Layers;

/// <summary>
/// A batch of bags of feature indices in compressed-row form: the bag of sample r is
/// <c>Indices[Offsets[r] .. Offsets[r + 1])</c>, with optional per-index weights.
/// </summary>
public sealed class SparseFeatures
{
    /// <summary>Creates a batch, checking that the offsets describe the indices.</summary>
    /// <exception cref="ArgumentException">Offsets do not start at 0, decrease, or do not end at the index count; weights do not match.</exception>
    public SparseFeatures(int[] indices, int[] offsets, float[]? weights = null)
    {
        ArgumentNullException.ThrowIfNull(indices);
        ArgumentNullException.ThrowIfNull(offsets);
        if (offsets.Length == 0 || offsets[0] != 0 || offsets[^1] != indices.Length)
            throw new ArgumentException($"Offsets must start at 0 and end at the index count {indices.Length}; got {offsets.Length} offsets.", nameof(offsets));
        for (int i = 1; i < offsets.Length; i++)
            if (offsets[i] < offsets[i - 1])
                throw new ArgumentException($"Offsets must not decrease; offset {i} is {offsets[i]} after {offsets[i - 1]}.", nameof(offsets));
        if (weights is not null && weights.Length != indices.Length)
            throw new ArgumentException($"{weights.Length} weights for {indices.Length} indices.", nameof(weights));
        Indices = indices;
        Offsets = offsets;
        Weights = weights;
    }

    /// <summary>Feature indices of all samples, concatenated.</summary>
    public int[] Indices { get; }

    /// <summary>Rows + 1 offsets into <see cref="Indices"/>.</summary>
    public int[] Offsets { get; }

    /// <summary>Optional weight per index.</summary>
    public float[]? Weights { get; }

    /// <summary>Number of samples.</summary>
    public int Rows => Offsets.Length - 1;

    /// <summary>
    /// Hashes string features into <paramref name="buckets"/> buckets with 64-bit FNV-1a over UTF-8, a
    /// hash fixed by its definition, so every node maps a feature to the same row.
    /// </summary>
    public static SparseFeatures Hash(IReadOnlyList<IReadOnlyList<string>> samples, int buckets)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(buckets, 1);
        var offsets = new int[samples.Count + 1];
        var indices = new List<int>();
        for (int r = 0; r < samples.Count; r++)
        {
            foreach (var feature in samples[r]) indices.Add(Bucket(feature, buckets));
            offsets[r + 1] = indices.Count;
        }
        return new SparseFeatures(indices.ToArray(), offsets);
    }

    /// <summary>The bucket of one feature.</summary>
    public static int Bucket(string feature, int buckets)
    {
        ulong hash = 14695981039346656037UL;
        foreach (byte b in Encoding.UTF8.GetBytes(feature))
        {
            hash ^= b;
            hash *= 1099511628211UL;
        }
        return (int)(hash % (ulong)buckets);
    }
}
