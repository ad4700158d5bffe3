using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using MoEMesh.Tensors.Layers;

namespace MoEMesh.Routing.Models;

/// <summary>
/// Raw features (tokens, "field=value" strings) to embedding buckets by a stable hash, so any node maps
/// the same feature to the same row with no shared vocabulary.
/// </summary>
public static class FeatureHashing
{
    /// <summary>A batch of bags of features as bucket indices.</summary>
    public static SparseFeatures Hash(IReadOnlyList<IReadOnlyList<string>> samples, int buckets)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(buckets, 1);
        var offsets = new int[samples.Count + 1];
        var indices = new List<int>();
        for (int s = 0; s < samples.Count; s++)
        {
            foreach (var feature in samples[s]) indices.Add(Bucket(feature, buckets));
            offsets[s + 1] = indices.Count;
        }
        return new SparseFeatures(indices.ToArray(), offsets);
    }

    /// <summary>The bucket of one feature: the first 8 bytes of the SHA-256 of its UTF-8 text, modulo the bucket count.</summary>
    public static int Bucket(string feature, int buckets)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(feature), hash);
        return (int)(BinaryPrimitives.ReadUInt64LittleEndian(hash) % (ulong)buckets);
    }
}
