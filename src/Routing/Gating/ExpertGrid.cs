using MoEMesh.Protocol.Addressing;

namespace MoEMesh.Routing.Gating;

/// <summary>
/// The grid experts live on: a name and the size of each dimension. <c>ffn</c> with sizes [32, 32, 32] holds
/// uids ffn.0.0.0 … ffn.31.31.31; the gate scores each dimension separately and an expert's score is the sum
/// of its coordinates' scores (Hivemind's product-key layout), so a search need not score every uid.
/// </summary>
public sealed record ExpertGrid
{
    /// <summary>Creates a grid.</summary>
    /// <exception cref="ArgumentException">The name is not a uid name or a size is not positive.</exception>
    public ExpertGrid(string name, params int[] sizes)
    {
        if (!ExpertPrefix.TryParse(name + ".", out var root, out var error)) throw new ArgumentException(error, nameof(name));
        if (sizes.Length == 0 || sizes.Any(s => s < 1)) throw new ArgumentException($"Grid {name} needs at least one dimension, each of size at least 1; got [{string.Join(", ", sizes)}].", nameof(sizes));
        Name = name;
        Sizes = sizes;
        Root = root;
    }

    /// <summary>The uid name ("ffn").</summary>
    public string Name { get; }

    /// <summary>Size of each dimension.</summary>
    public IReadOnlyList<int> Sizes { get; }

    /// <summary>How many experts the grid holds: the product of its sizes.</summary>
    public long Count => Sizes.Aggregate(1L, (count, size) => count * size);

    /// <summary>The prefix of every uid of the grid ("ffn.").</summary>
    public ExpertPrefix Root { get; }

    /// <summary>Whether <paramref name="uid"/> lies on this grid.</summary>
    public bool Contains(ExpertUid uid) =>
        uid.Name == Name && uid.Coordinates.Count == Sizes.Count && uid.Coordinates.Select((c, i) => c < Sizes[i]).All(ok => ok);

    /// <summary>The score of <paramref name="uid"/> under per-dimension <paramref name="scores"/>.</summary>
    public float Score(ExpertUid uid, IReadOnlyList<float[]> scores)
    {
        float total = 0f;
        for (int d = 0; d < Sizes.Count; d++) total += scores[d][uid.Coordinates[d]];
        return total;
    }
}
